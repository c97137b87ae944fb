"""Incidents: reports of misuse, safety or security problems and leaks, their triage by
operators, and the policy triggers a confirmed incident sets off."""
