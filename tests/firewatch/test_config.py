"""Configuration: defaults, parsing, and one clear line per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from firewatch.config import ConfigError, load_settings

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FIREWATCH_"):
            monkeypatch.delenv(key)


def test_defaults_point_at_telegram_and_a_local_sqlite_file() -> None:
    s = load_settings(env_file=None)
    assert s.api_base_url == "https://api.telegram.org/bot"
    assert s.api_file_url == "https://api.telegram.org/file/bot"
    assert s.db_url == "sqlite:///data/firewatch.db"
    assert str(s.snapshots) == "data/snapshots"
    assert s.token is None
    assert s.face_match_threshold == 0.5
    assert s.rearm_after_h == 8


def test_env_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"FIREWATCH_BOT_TOKEN={TOKEN}\nFIREWATCH_ADMIN_IDS=12, 34\n")
    monkeypatch.setenv("FIREWATCH_ALERT_CHAT_IDS", "-1001")
    s = load_settings(env_file=env)
    assert s.token == TOKEN
    assert s.admin_ids == [12, 34]
    assert s.alert_chat_ids == [-1001]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("FIREWATCH_CONFIRM_HITS", "three"),
        ("FIREWATCH_DETECT_CONFIDENCE", "1.5"),
        ("FIREWATCH_ADMIN_IDS", "12,abc"),
        ("FIREWATCH_LOG_LEVEL", "LOUD"),
        ("FIREWATCH_INFERENCE_THREADS", "0"),
        ("FIREWATCH_VETO_NO_FIRE", "0"),
    ],
)
def test_invalid_value_names_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None)
    message = str(err.value)
    assert message.startswith(key + ":")
    assert "\n" not in message


def test_cross_field_error_names_both_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWATCH_CONFIRM_HITS", "9")
    monkeypatch.setenv("FIREWATCH_CONFIRM_WINDOW", "5")
    with pytest.raises(ConfigError, match="FIREWATCH_CONFIRM_HITS .* FIREWATCH_CONFIRM_WINDOW"):
        load_settings(env_file=None)


def test_token_is_hidden_in_repr_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWATCH_BOT_TOKEN", TOKEN)
    s = load_settings(env_file=None)
    assert TOKEN not in repr(s) and TOKEN not in str(s)
    monkeypatch.setenv("FIREWATCH_SOURCE_FPS", "-1")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None)
    assert TOKEN not in str(err.value)


def test_env_example_documents_every_key_with_its_default() -> None:
    from firewatch.config import Settings
    from tests.support.data import REPO

    example = REPO / ".env.example"
    documented = {}
    for line in example.read_text().splitlines():
        if line.startswith("FIREWATCH_"):
            key, _, value = line.partition("=")
            documented[key] = value
    expected = {f"FIREWATCH_{name.upper()}" for name in Settings.model_fields}
    assert set(documented) == expected
    # Loading the example as-is gives exactly the defaults.
    defaults = load_settings(env_file=None)
    from_example = load_settings(env_file=example)
    for name in Settings.model_fields:
        assert getattr(from_example, name) == getattr(defaults, name), name


def test_classifier_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREWATCH_CLASSIFIER_MODEL", "off")
    assert load_settings(env_file=None).classifier_model is None


def test_a_shipped_classifier_is_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from firewatch.paths import SHIPPED_CLASSIFIERS

    assert load_settings(env_file=None).classifier_model == SHIPPED_CLASSIFIERS["v2"]  # the default
    monkeypatch.setenv("FIREWATCH_CLASSIFIER_MODEL", "V1")
    v1 = load_settings(env_file=None).classifier_model
    assert v1 == SHIPPED_CLASSIFIERS["v1"] and v1.is_file() and v1 != SHIPPED_CLASSIFIERS["v2"]


def test_veto_setting_reaches_the_event_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from firewatch.wiring import event_config

    monkeypatch.setenv("FIREWATCH_VETO_NO_FIRE", "0.3")
    monkeypatch.setenv("FIREWATCH_CONFIRM_HITS", "4")
    monkeypatch.setenv("FIREWATCH_CONFIRM_WINDOW", "6")
    config = event_config(load_settings(env_file=None))
    assert (config.veto_confidence, config.confirm_hits, config.confirm_window) == (0.3, 4, 6)


def test_detector_runtime_is_one_the_registry_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(env_file=None).detector_runtime == "onnxruntime"
    monkeypatch.setenv("FIREWATCH_DETECTOR_RUNTIME", "openvino")
    with pytest.raises(ConfigError, match=r"^FIREWATCH_DETECTOR_RUNTIME: must be one of onnxruntime$"):
        load_settings(env_file=None)


def test_detection_threshold_follows_detector_and_verification_unless_set(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from firewatch.config import OPERATING_POINTS, PLAIN_DETECT_CONFIDENCE, VERIFIED_DETECT_CONFIDENCE

    own = tmp_path / "my-detector.onnx"
    for detector, (verified, plain) in (("v2", OPERATING_POINTS["v2"]), ("v1", OPERATING_POINTS["v1"]),
                                        (str(own), (VERIFIED_DETECT_CONFIDENCE, PLAIN_DETECT_CONFIDENCE))):
        monkeypatch.setenv("FIREWATCH_DETECTOR_MODEL", detector)
        monkeypatch.delenv("FIREWATCH_VERIFY", raising=False)
        assert load_settings(env_file=None).detect_confidence == verified < plain, detector
        monkeypatch.setenv("FIREWATCH_VERIFY", "false")
        assert load_settings(env_file=None).detect_confidence == plain, detector
    assert OPERATING_POINTS["v2"] != OPERATING_POINTS["v1"]  # each chosen on its own val
    monkeypatch.delenv("FIREWATCH_DETECTOR_MODEL")
    assert load_settings(env_file=None).detect_confidence == OPERATING_POINTS["v2"][1]  # v2 is the default
    monkeypatch.setenv("FIREWATCH_DETECT_CONFIDENCE", "0.4")
    assert load_settings(env_file=None).detect_confidence == 0.4


def test_v1_detector_stays_selectable_with_the_verification_fitted_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from firewatch.paths import SHIPPED_DETECTORS
    from vision.verification import VerificationModel

    v2, v1 = SHIPPED_DETECTORS["v2"], SHIPPED_DETECTORS["v1"]
    assert v1 != v2
    defaults = load_settings(env_file=None)
    assert (defaults.detector_model, defaults.verification_model) == v2
    for value in ("v1", str(v1[0]), " V1 "):
        monkeypatch.setenv("FIREWATCH_DETECTOR_MODEL", value)
        settings = load_settings(env_file=None)
        assert (settings.detector_model, settings.verification_model) == v1, value
    for detector, verification in (v1, v2):
        assert detector.is_file()
        VerificationModel.load(verification)
    assert v1[1].read_bytes() != v2[1].read_bytes()  # each fitted on its own detector's tracks
    # A verification of one's own is kept, whichever detector.
    monkeypatch.setenv("FIREWATCH_VERIFICATION_MODEL", "/srv/my-verification.json")
    assert str(load_settings(env_file=None).verification_model) == "/srv/my-verification.json"
