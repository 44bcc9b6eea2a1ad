"""What the branded clients read: Element Web's config.json, the well-known files, the mobile
build manifest. Pure functions of the spec, so they are easy to test and always deterministic.

Privacy defaults: no analytics, no bug-report endpoint, no integration manager or widgets (they
would reach servers outside the organization) unless the spec turns analytics on.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.spec import Spec


def logo_file_name(spec: Spec) -> str:
    """The logo's name in the bundle, keeping its extension so web servers type it right."""
    suffix = spec.resolve(spec.branding.logo).suffix.lower() if spec.branding.logo else ""
    return f"logo{suffix}"


def _footer_links(spec: Spec) -> list[dict[str, str]]:
    links = [
        ("Privacy", spec.branding.privacy_policy_url),
        ("Terms", spec.branding.terms_url),
        ("Support", spec.branding.support_url),
    ]
    return [{"text": text, "url": url} for text, url in links if url]


def element_config(spec: Spec) -> dict[str, Any]:
    branding: dict[str, Any] = {"auth_footer_links": _footer_links(spec)}
    if spec.branding.logo:
        branding["auth_header_logo_url"] = f"branding/{logo_file_name(spec)}"
    self_registration = spec.registration.mode != "admin_only"
    config: dict[str, Any] = {
        "default_server_config": {
            "m.homeserver": {
                "base_url": spec.public_baseurl.rstrip("/"),
                "server_name": spec.server.server_name,
            }
        },
        "disable_custom_urls": True,
        "disable_guests": True,
        "disable_3pid_login": spec.registration.mode != "email_domain",
        "brand": spec.brand,
        "branding": branding,
        "default_theme": spec.branding.theme,
        "custom_themes": [_theme(spec)],
        "room_directory": {"servers": [spec.server.server_name]},
        "show_labs_settings": False,
        "default_country_code": "",
        "setting_defaults": {
            "UIFeature.registration": self_registration,
            "UIFeature.passwordReset": spec.email.enabled,
            "UIFeature.feedback": spec.analytics.enabled and bool(spec.analytics.rageshake_url),
            "UIFeature.shareSocial": False,
            "UIFeature.widgets": False,
            "UIFeature.identityServer": False,
            "UIFeature.thirdPartyId": spec.registration.mode == "email_domain",
            "UIFeature.voip": spec.calls.enabled,
            "UIFeature.urlPreviews": False,
        },
        "mobile_builds": {
            "ios": spec.branding.ios_store_url or None,
            "android": spec.branding.android_store_url or None,
            "fdroid": None,
        },
        "terms_and_conditions_links": [
            link for link in _footer_links(spec) if link["text"] in ("Privacy", "Terms")
        ],
    }
    if spec.branding.privacy_policy_url:
        config["privacy_policy_url"] = spec.branding.privacy_policy_url
    if spec.analytics.enabled:
        if spec.analytics.posthog_project_api_key:
            config["posthog"] = {
                "project_api_key": spec.analytics.posthog_project_api_key,
                "api_host": spec.analytics.posthog_api_host,
            }
        if spec.analytics.rageshake_url:
            config["bug_report_endpoint_url"] = spec.analytics.rageshake_url
    return config


def _theme(spec: Spec) -> dict[str, Any]:
    colors = spec.branding.colors
    return {
        "name": spec.brand,
        "is_dark": spec.branding.theme == "dark",
        "colors": {
            "accent-color": colors.accent,
            "primary-color": colors.primary,
            "sidebar-color": colors.primary,
            "timeline-background-color": colors.background,
        },
    }


def well_known_client(spec: Spec) -> dict[str, Any]:
    return {"m.homeserver": {"base_url": spec.public_baseurl.rstrip("/")}}


def well_known_server(spec: Spec) -> dict[str, Any]:
    """Where other servers reach us: nginx terminates federation TLS on ``federation.port``."""
    name = spec.server.server_name
    if ":" in name.rsplit("]", 1)[-1]:
        return {"m.server": name}  # the server name already carries its port
    return {"m.server": f"{name}:{spec.federation.port}"}


def well_known_support(spec: Spec) -> dict[str, Any]:
    """MSC1929 support file: who to contact about this server (privacy policy section 12)."""
    support: dict[str, Any] = {}
    if spec.branding.support_email:
        support["contacts"] = [
            {"email_address": spec.branding.support_email, "role": "m.role.admin"}
        ]
    if spec.branding.support_url:
        support["support_page"] = spec.branding.support_url
    return support


def mobile_manifest(spec: Spec) -> dict[str, Any]:
    """Everything an Android/iOS rebrand build needs, in one place."""
    apps = {app.platform: app.app_id for app in spec.push.apps}
    return {
        "org": spec.org.slug,
        "display_name": spec.brand,
        "homeserver": {
            "server_name": spec.server.server_name,
            "base_url": spec.public_baseurl.rstrip("/"),
        },
        "android": {
            "application_id": spec.branding.android_app_id,
            "pusher_app_id": apps.get("android", ""),
        },
        "ios": {
            "bundle_id": spec.branding.ios_bundle_id,
            "pusher_app_id": apps.get("ios", ""),
        },
        "push": {
            "enabled": spec.push.enabled,
            "gateway_url": spec.push_gateway_url,
            "event_id_only": spec.push.event_id_only,
        },
        "colors": {
            "primary": spec.branding.colors.primary,
            "accent": spec.branding.colors.accent,
            "background": spec.branding.colors.background,
        },
        "theme": spec.branding.theme,
        "logo": f"client/branding/{logo_file_name(spec)}" if spec.branding.logo else "",
        "links": {
            "privacy_policy": spec.branding.privacy_policy_url,
            "terms": spec.branding.terms_url,
            "support": spec.branding.support_url,
        },
        "features": {
            "self_registration": spec.registration.mode != "admin_only",
            "calls": spec.calls.enabled,
            "analytics": spec.analytics.enabled,
        },
    }


def to_json(document: dict[str, Any]) -> str:
    """Stable JSON: same spec, same bytes."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
