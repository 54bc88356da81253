from psycopg.conninfo import conninfo_to_dict

from streams.app import worker_conninfo
from streams.settings import load_settings


def test_worker_sessions_are_named_and_bound_when_idle_in_a_transaction() -> None:
    # A password set: the worker's login needs one (else the local stack's secrets file).
    settings = load_settings(sink_postgres={"worker_password": "pw"})
    info = conninfo_to_dict(worker_conninfo(settings, "shipping"))
    assert str(info["application_name"]).startswith("shipping-")
    assert info["options"] == "-c idle_in_transaction_session_timeout=60000"
    assert info["connect_timeout"] == "5"
