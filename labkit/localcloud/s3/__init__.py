"""S3: moto keeps buckets and objects; :mod:`.patches` keeps request bodies as sent and stamps objects with lab time."""
