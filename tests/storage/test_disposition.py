"""The Content-Disposition header for downloads."""

import pytest

from gateway.storage import attachment_disposition


def test_a_plain_name_is_quoted_and_repeated_in_utf8() -> None:
    assert attachment_disposition("model-00001-of-00002.safetensors") == (
        'attachment; filename="model-00001-of-00002.safetensors"; '
        "filename*=UTF-8''model-00001-of-00002.safetensors"
    )


def test_a_non_ascii_name_gets_an_ascii_fallback() -> None:
    assert attachment_disposition("modèle ü.bin") == (
        "attachment; filename=\"mod_le _.bin\"; filename*=UTF-8''mod%C3%A8le%20%C3%BC.bin"
    )


def test_characters_that_could_break_the_header_never_reach_it_raw() -> None:
    header = attachment_disposition('evil"\\name\r\nSet-Cookie: x=1.bin')

    assert "\r" not in header
    assert "\n" not in header
    assert header.startswith('attachment; filename="name__Set-Cookie: x=1.bin"; ')
    assert header.endswith("filename*=UTF-8''name%0D%0ASet-Cookie%3A%20x%3D1.bin")


def test_only_the_last_path_segment_is_used() -> None:
    assert attachment_disposition("weights/shard.bin").startswith(
        'attachment; filename="shard.bin"'
    )
    assert attachment_disposition("..\\..\\x.bin").startswith('attachment; filename="x.bin"')


@pytest.mark.parametrize("name", ["", "   ", "dir/", ".", ".."])
def test_a_name_with_nothing_left_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a usable download file name"):
        attachment_disposition(name)
