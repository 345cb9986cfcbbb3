"""MQTT is off unless ``FIREWATCH_MQTT_URL`` is set; then the daemon's sink is built from the
settings, and the broker's password never reaches a log line."""

from __future__ import annotations

import logging

import pytest

from bot.redaction import RedactingFilter, url_password
from firewatch.config import ConfigError, load_settings
from firewatch.wiring import mqtt_publisher
from sinks.mqtt import Broker
from storage import Store


def test_off_by_default(store: Store) -> None:
    assert mqtt_publisher(load_settings(env_file=None), store) is None


def test_built_from_the_settings_with_every_camera_announced(caplog: pytest.LogCaptureFixture, store: Store) -> None:
    url = "mqtt://ha:broker-secret@10.0.0.5:1884"
    settings = load_settings(env_file=None, mqtt_url=url, mqtt_topic_prefix="/site-a/",
                             camera_name="gate")
    publisher = mqtt_publisher(settings, store)
    assert publisher.settings.broker == Broker("10.0.0.5", 1884, False, "ha", "broker-secret")
    assert publisher.topics.prefix == "site-a" and publisher.topics.discovery_prefix == "homeassistant"
    assert "broker-secret" not in repr(settings) and "broker-secret" not in str(publisher.settings.broker)
    caplog.handler.addFilter(RedactingFilter([url_password(settings.mqtt)]))
    logging.getLogger("test").error("broker %s refused broker-secret", url)
    assert "broker-secret" not in caplog.text


def test_a_bad_broker_url_is_one_line_without_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env_file=None, mqtt_url="http://ha:broker-secret@host")
    assert "FIREWATCH_MQTT_URL" in str(error.value) and "broker-secret" not in str(error.value)
