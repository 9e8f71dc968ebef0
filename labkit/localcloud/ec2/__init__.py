"""EC2: instances as sandboxes with user data, systemd units and SSM Run Command (:mod:`.service`,
:mod:`.systemctl_shim`), instance metadata (:mod:`.imds`), the image and instance type catalogues
(:mod:`.catalogue`)."""
