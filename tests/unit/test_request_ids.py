"""Request ids: the caller's when it is safe to log, else a fresh random UUID in hex."""
import uuid

from webhooks.request_ids import new_request_id, request_id_of


def test_a_fresh_id_is_a_version_4_uuid_in_hex_and_never_the_same():
    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for request_id in ids:
        parsed = uuid.UUID(hex=request_id)
        assert parsed.hex == request_id and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_the_callers_id_is_kept_only_when_short_and_plain():
    assert request_id_of("req-1.a:b_c") == "req-1.a:b_c"
    for unsafe in (None, "", "x" * 65, "a b", "-starts-with-a-dash", "new\nline"):
        assert uuid.UUID(hex=request_id_of(unsafe)).version == 4
