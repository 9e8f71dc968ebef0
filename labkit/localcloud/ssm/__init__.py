"""SSM: Run Command into the EC2 sandboxes, and the calls moto lacks (:mod:`.patches`; served by the ``ec2``
service)."""
