"""pushgw.yaml parsing (one line naming the key) and the provisioner's rendering of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioner.render_push import PUSHGW_CONFIG, push_part
from provisioner.spec import Org, Push, PushApp, Server, Spec
from pusher_gateway.config import ConfigError, load_config, parse_config
from tests.fakes.fake_fcm import make_service_account, write_json_0600


@pytest.fixture(scope="module")
def service_account(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, _, info = make_service_account("http://127.0.0.1:9/token", "acme-chat")
    return write_json_0600(tmp_path_factory.mktemp("sa") / "sa.json", info)


def config_with(service_account: Path, **top: object) -> dict[str, object]:
    raw: dict[str, object] = {"apps": [{"app_id": "com.acme.android",
                                        "service_account": str(service_account)}]}
    raw.update(top)
    return raw


def test_defaults_and_project_from_service_account(service_account: Path) -> None:
    cfg = parse_config(config_with(service_account))
    assert cfg.listen_port == 5000 and cfg.metrics_port == 0
    assert cfg.fcm_base_url == "https://fcm.googleapis.com"
    assert cfg.apps[0].fcm_project == "acme-chat"
    assert cfg.retry_budget_seconds < 60


def test_empty_config_is_valid() -> None:
    assert parse_config(None).apps == ()


@pytest.mark.parametrize(("change", "message"), [
    ({"listn": {}}, "listn: unknown key (did you mean 'listen'?)"),
    ({"listen": {"port": "80"}}, "listen.port: expected an integer"),
    ({"listen": {"port": 70000}}, "listen.port: must be a port number"),
    ({"listen": {"hots": "x"}}, "listen.hots: unknown key (did you mean 'host'?)"),
    ({"fcm_base_url": "fcm.googleapis.com"}, "fcm_base_url: must be an http(s) URL"),
    ({"fcm_http": "h3"}, "fcm_http: must be one of auto, h2c, http1"),
    ({"retry_budget_seconds": 50}, "retry_budget_seconds: with request_timeout_seconds it must"),
    ({"retry_budget_seconds": 0}, "retry_budget_seconds: must be greater than 0"),
    ({"max_devices": True}, "max_devices: expected an integer, got a boolean"),
    ({"redis_url": "localhost:6379"}, "redis_url: must be a redis:// URL"),
    ({"apps": {}}, "apps: expected a list"),
    ({"apps": ["x"]}, "apps[0]: expected a mapping"),
    ({"apps": [{"app_id": "a", "service_account": "/nonexistent.json"}]},
     "apps[0].service_account: file not found"),
    ({"apps": [{"service_account": "x"}]}, "apps[0].app_id: required"),
    ({"apps": [{"app_id": "a"}]}, "apps[0].service_account: required"),
])
def test_errors_name_the_key(service_account: Path, change: dict[str, object],
                             message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_with(service_account, **change))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_app_errors(service_account: Path) -> None:
    sa = str(service_account)
    cases = [
        ({"app_id": "a", "service_account": sa, "fcm_options": {"android": {"prio": "x"}}},
         "apps[0].fcm_options.android.prio: unknown FCM v1 field"),
        ({"app_id": "a", "service_account": sa, "platform": "symbian"},
         "apps[0].platform: must be one of android, ios, web"),
        ({"app_id": "a", "service_account": sa, "max_in_flight": 0},
         "apps[0].max_in_flight: must be a positive integer"),
        ({"app_id": "a", "service_account": sa, "colour": 1},
         "apps[0].colour: unknown key"),
    ]
    for app, message in cases:
        with pytest.raises(ConfigError, match="^" + re.escape(message)):
            parse_config({"apps": [app]})
    with pytest.raises(ConfigError, match=r"apps\[1\]\.app_id: duplicate"):
        parse_config({"apps": [{"app_id": "a", "service_account": sa}] * 2})


def test_bad_service_account_file(tmp_path: Path) -> None:
    bad = tmp_path / "sa.json"
    bad.write_text('{"type": "authorized_user"}')
    with pytest.raises(ConfigError, match=r"^apps\[0\]\.service_account: not a usable"):
        parse_config({"apps": [{"app_id": "a", "service_account": str(bad)}]})


def test_relative_service_account_resolves_against_the_config(tmp_path: Path,
                                                              service_account: Path) -> None:
    (tmp_path / "sa.json").write_bytes(service_account.read_bytes())
    cfg_file = tmp_path / "pushgw.yaml"
    cfg_file.write_text("apps:\n  - app_id: a\n    service_account: sa.json\n")
    assert load_config(cfg_file).apps[0].service_account == tmp_path / "sa.json"
    cfg_file.write_text("apps: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg_file)


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "pushgw.yaml"
    cfg.write_text("listen: {port: nope}\n")
    proc = subprocess.run([sys.executable, "-m", "pusher_gateway.cli", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "chat500-pushgw: listen.port: expected an integer, got 'nope'"]


def _spec(tmp_path: Path, push: Push) -> Spec:
    return Spec(org=Org("acme", "Acme"), server=Server("chat.acme.test"), push=push,
                base_dir=tmp_path)


def test_rendered_config_is_accepted_by_the_gateway(tmp_path: Path,
                                                    service_account: Path) -> None:
    (tmp_path / "fcm").mkdir()
    (tmp_path / "fcm" / "sa.json").write_bytes(service_account.read_bytes())
    push = Push(listen_port=5123, metrics_port=9123, fcm_base_url="http://127.0.0.1:9999",
                redis_url="redis://127.0.0.1:6379/2", apps=(
                    PushApp(app_id="com.acme.chat.android", fcm_project="acme-prod",
                            service_account="fcm/sa.json",
                            fcm_options={"android": {"ttl": "600s"}}),
                    PushApp(app_id="com.acme.chat.*", platform="ios",
                            service_account="fcm/sa.json", max_in_flight=64),
                ))
    part = push_part(_spec(tmp_path, push), tmp_path / "bundle")
    assert set(part.files) == {PUSHGW_CONFIG} and part.homeserver == {}
    raw = yaml.safe_load(part.files[PUSHGW_CONFIG])
    cfg = parse_config(raw)
    assert (cfg.listen_host, cfg.listen_port, cfg.metrics_port) == ("127.0.0.1", 5123, 9123)
    assert cfg.fcm_base_url == "http://127.0.0.1:9999"
    assert cfg.redis_url == "redis://127.0.0.1:6379/2"
    assert cfg.event_id_only is True  # the spec's default: ids and counts only
    a, b = cfg.apps
    assert (a.app_id, a.fcm_project, a.fcm_options) == (
        "com.acme.chat.android", "acme-prod", {"android": {"ttl": "600s"}})
    assert a.service_account == (tmp_path / "fcm" / "sa.json").resolve()
    assert (b.platform, b.fcm_project, b.max_in_flight) == ("ios", "acme-chat", 64)


def test_rendered_config_without_apps_is_valid(tmp_path: Path) -> None:
    part = push_part(_spec(tmp_path, Push()), tmp_path / "bundle")
    cfg = parse_config(yaml.safe_load(part.files[PUSHGW_CONFIG]))
    assert cfg.apps == () and cfg.listen_port == 5000
