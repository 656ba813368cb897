"""pktmon's real-time text in another language (Japanese), for nodes whose Windows is not English.

pktmon's text is translated on non-English Windows (reference 6.3, a
Japanese etl2txt drop line begins `ドロップ: 方向 Rx、種類 IP、コンポーネント
119、...`). Only that fragment is public: the other words, and the order
(direction, type and component first, as in the fragment), are our own
(CONSTRUCTED). Values (numbers, `Rx`/`Tx`, the frame type, the drop
location) and the tcpdump-style summary stay as they are.
"""

from __future__ import annotations

JAPANESE = "ja-JP"

_KEYS = {
    "Direction": "方向",
    "Type": "種類",
    "Component": "コンポーネント",
    "PktGroupId": "パケット グループ ID",
    "PktNumber": "パケット番号",
    "Appearance": "出現",
    "Edge": "エッジ",
    "Filter": "フィルター",
    "DropReason": "ドロップ理由",
    "DropLocation": "ドロップ場所",
    "OriginalSize": "元のサイズ",
    "LoggedSize": "ログ サイズ",
}
_FIRST = ("Direction", "Type", "Component")
_BANNER = {
    "Collected Data:": "収集されたデータ:",
    "Capture Type:": "キャプチャの種類:",
    "Monitored Components:": "監視対象のコンポーネント:",
    "Packet Filters:": "パケット フィルター:",
    "Processing...": "処理しています...",
    "Packet counters, packet capture": "パケット カウンター、パケット キャプチャ",
    "Packet counters": "パケット カウンター",
    "All packets": "すべてのパケット",
    "All": "すべて",
    "None": "なし",
}


def translate_record(record: str) -> str:
    """One real-time record (header line, TAB, summary) in Japanese."""
    header, summary = record.split("\n", 1)
    clock, rest = header.split(" ", 1)
    drop = rest.startswith("Drop: ")
    items = [item.strip() for item in rest.removeprefix("Drop: ").split(", ")]
    pairs = dict(item.split(" ", 1) for item in items)
    order = [*_FIRST, *(k for k in pairs if k not in _FIRST)]
    text = "、".join(f"{_KEYS[k]} {pairs[k].strip()}" for k in order if k in pairs)
    if drop:
        summary = summary.replace("\tDrop: ", "\tドロップ: ", 1)
    return f"{clock} {'ドロップ: ' if drop else ''}{text}\n{summary}"


def translate_banner(banner: str) -> str:
    """The start banner in Japanese (the filter table's own words are left as they are)."""
    lines = []
    for line in banner.split("\n"):
        stripped = line.strip()
        lines.append(line.replace(stripped, _BANNER[stripped]) if stripped in _BANNER else line)
    return "\n".join(lines)
