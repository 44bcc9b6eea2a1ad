"""The ``chat500`` provisioner: one organization's YAML spec in, a bootable deployment out."""
