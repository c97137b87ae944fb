"""The declarative base every table maps onto, and the length of identifiers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase

from gateway.db.types import UTCDateTime

# Identifiers of at most 64 characters keep indexes small on both backends.
NAME = 64


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}
