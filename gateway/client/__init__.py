"""The download client behind `gateway download`.

It talks to a gateway only through its public HTTP API, so it imports nothing from the
server side: it can be lifted out into a small package of its own.
"""
