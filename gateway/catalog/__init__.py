"""The release catalog: models, releases, artifacts and licenses, as read models."""
