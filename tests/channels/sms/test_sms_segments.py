from __future__ import annotations

import pytest

from channels.sms.segments import segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 0, 160)),
        ("a" * 160, ("GSM-7", 1, 0)),
        ("a" * 161, ("GSM-7", 2, 153 * 2 - 161)),
        ("a" * 306, ("GSM-7", 2, 0)),
        ("a" * 307, ("GSM-7", 3, 152)),
        ("€" * 80, ("GSM-7", 1, 0)),  # extension chars count double
        # 76 € fill 152 septets; the 77th pair cannot straddle: 5 € (10 septets) in seg 2
        ("€" * 81, ("GSM-7", 2, 153 - 10)),
        ("a" * 152 + "€", ("GSM-7", 1, 6)),
        # 153rd septet would split the escape pair: the € moves to segment 2
        ("a" * 152 + "€" + "a" * 10, ("GSM-7", 2, 153 - 12)),
        ("é£¥ñ@", ("GSM-7", 1, 155)),
        ("ç", ("UCS-2", 1, 69)),  # lower-case ç is not GSM-7 (only Ç is)
        ("é" * 70 + "ł", ("UCS-2", 2, 67 * 2 - 71)),
        ("ł" * 70, ("UCS-2", 1, 0)),
        ("ł" * 134, ("UCS-2", 2, 0)),
        ("😀" * 35, ("UCS-2", 1, 0)),  # surrogate pairs count 2
        ("😀" * 36, ("UCS-2", 2, 67 * 2 - 72 - 1)),  # 66 units fit in seg 1, pair not split
    ],
)
def test_segments(text, expected):
    assert segments(text) == expected
