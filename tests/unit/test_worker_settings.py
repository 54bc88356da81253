"""Worker settings hold only what the worker reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import WorkerSettings


def test_web_port_is_gone_and_a_config_still_setting_it_fails_loudly() -> None:
    # The worker never served Faust's web port; a setting nobody reads only misleads.
    with pytest.raises(ValidationError, match="web_port"):
        WorkerSettings(web_port=6066)  # type: ignore[call-arg]
