"""The license's part of a bundle: verified at render time, copied in, enforced by the module.

Render refuses what the homeserver would refuse to start with (missing, forged, another
server's, lacking a feature the spec turns on), so the failure shows up at the desk, not at
boot; expiring, expired and evaluation licenses render with a warning line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from provisioner.errors import Chat500Error
from provisioner.render_parts import RenderPart, module_entry
from provisioner.spec import Spec
from synapse_modules.licensing import rules
from synapse_modules.licensing.document import (
    LicenseError,
    resolve_public_key,
    vendor_public_key,
)
from synapse_modules.licensing.module import verify_for_deployment

MODULE = "synapse_modules.licensing.module.LicenseModule"
NOTICES_LOCALPART = "notices"


def spec_required_features(spec: Spec) -> frozenset[str]:
    return rules.required_features(
        minors_enabled=spec.minors.enabled,
        storage_backend=spec.storage.backend,
        workers=spec.scale.workers,
        custom_branding=bool(spec.branding.brand or spec.branding.logo),
    )


def license_part(spec: Spec, bundle_dir: Path) -> RenderPart:
    path = spec.license_path
    required = spec_required_features(spec)
    try:
        public_key = resolve_public_key(spec.license.vendor_public_key, spec.base_dir)
        lic = verify_for_deployment(path, public_key, spec.server.server_name, required)
    except LicenseError as exc:
        raise Chat500Error(f"license: {exc}") from None

    warnings: list[str] = []
    status = rules.status_at(lic, datetime.now(UTC))
    if status.state is not rules.State.VALID:
        warnings.append(f"license: {rules.describe(lic, status)}")
    if lic.evaluation:
        warnings.append(
            f"license: this deployment runs on an EVALUATION license ({lic.seats} seats, "
            "not for production); ask the vendor for a license"
        )
    elif public_key.key_id != vendor_public_key().key_id:
        warnings.append(
            f"license: verified with {public_key.key_id}, not the Chat500MG vendor key"
        )

    bundle_file = f"license/{spec.org.slug}.license"
    config: dict[str, object] = {
        "license_path": str((Path(bundle_dir) / bundle_file).resolve()),
        "server_name": spec.server.server_name,
        "required_features": sorted(required),
    }
    if spec.license.vendor_public_key.strip():
        config["vendor_public_key"] = public_key.encode()
    return RenderPart(
        homeserver={
            "modules": [module_entry(MODULE, config)],
            "server_notices": {
                "system_mxid_localpart": NOTICES_LOCALPART,
                "system_mxid_display_name": f"{spec.brand} notices",
                "room_name": f"{spec.brand} server notices",
                "auto_join": True,
            },
        },
        files={bundle_file: path.read_bytes()},
        warnings=warnings,
    )
