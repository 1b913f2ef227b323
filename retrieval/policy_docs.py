"""Store policy documents: one Markdown file per policy, with YAML front matter, split into passages.

A file looks like this (`<id>.md`; the id is the file's name):

    ---
    id: returns
    title: Returns and refunds
    topics: [return, refund, exchange]          # words shoppers use for it (optional; a question naming one asks it)
    intents: [check_refund_policy]              # intents it answers (optional)
    updated: 2026-12-01
    ---
    # Returns and refunds                       (optional; ignored)

    ## Returns window
    You can return most items within 30 days of delivery.

    ## Items that can't be returned {#final-sale}
    ...

Every `## ` section is one passage with the stable id `<id>#<slug>`: the heading in lower case with
dashes, or the `{#slug}` written after it. A bad file fails loading with its path and the problem.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_EXPLICIT_SLUG = re.compile(r"\s*\{#(" + ID + r")\}$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(.+?)\1")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# A sentence ends at . ! or ? followed by a space and a capital, digit or quote ("$5.99" and "shop.example" don't).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“'(])")


class PolicyFileError(ValueError):
    """A policy file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class FrontMatter(BaseModel):
    """The YAML block at the top of a policy file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=f"^{ID}$", description="the policy's id: lower case, digits and dashes")
    title: str = Field(min_length=1, description="the policy's title, as a shopper would see it")
    topics: list[str] = Field(
        default_factory=list, description="words shoppers use for this policy: a question naming one is about it"
    )
    intents: list[str] = Field(default_factory=list, description="intents this policy answers")
    updated: datetime.date = Field(description="when the policy last changed (YYYY-MM-DD)")

    @field_validator("topics", "intents")
    @classmethod
    def _no_blanks(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("blank entry")
        return [s.strip() for s in v]


class Passage(BaseModel):
    """One `## ` section of a policy: what a question retrieves and an answer quotes."""

    id: str  # "<policy id>#<section slug>"
    policy: str
    policy_title: str
    title: str
    text: str
    topics: list[str] = Field(default_factory=list)
    intents: list[str] = Field(default_factory=list)
    updated: datetime.date

    def sentences(self) -> list[str]:
        return split_sentences(self.text)

    def index_text(self) -> str:
        """What BM25 reads: the titles and topics weigh in beside the text."""
        return f"{self.policy_title}\n{self.title}\n{' '.join(self.topics)}\n{self.text}"

    def chunks(self) -> list[str]:
        """What the dense encoder reads, one per sentence (it reads ~64 tokens), each with its section's title."""
        return [f"{self.policy_title}, {self.title}: {s}" for s in self.sentences()]


class PolicyDoc(BaseModel):
    """One policy file: its front matter and its sections as passages."""

    path: Path
    meta: FrontMatter
    passages: list[Passage]


def slugify(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower().replace("'", "")).strip("-")


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage's text: each line (a paragraph or list item) split at sentence ends."""
    out: list[str] = []
    for line in text.split("\n"):
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out


def _plain(line: str) -> str:
    """A Markdown line as plain text: links become their words, emphasis and code marks go."""
    line = _LINK.sub(r"\1", line)
    return _EMPHASIS.sub(r"\2", line).strip()


def _front_matter(path: Path, text: str) -> tuple[FrontMatter, list[str]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise PolicyFileError(path, "must start with a '---' line opening the YAML front matter")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise PolicyFileError(path, "the front matter has no closing '---' line") from None
    try:
        raw = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as e:
        raise PolicyFileError(path, f"front matter is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise PolicyFileError(path, "front matter must be a mapping (id, title, updated, ...)")
    try:
        meta = FrontMatter.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'front matter'}: {err['msg']}" for err in e.errors()
        )
        raise PolicyFileError(path, f"front matter: {problems}") from None
    if meta.id != path.stem:
        raise PolicyFileError(path, f"id {meta.id!r} does not match the file name {path.name!r}")
    return meta, lines[end + 1 :]


def parse_policy(path: str | Path) -> PolicyDoc:
    """One policy file, validated; PolicyFileError names the file and what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyFileError(path, f"cannot read: {e}") from None
    meta, body = _front_matter(path, text)
    sections: list[tuple[str, str, list[str]]] = []  # (slug, title, lines)
    for n, line in enumerate(body, start=1):
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) == 2:
            title = heading.group(2)
            explicit = _EXPLICIT_SLUG.search(title)
            if explicit:
                title = title[: explicit.start()].strip()
            slug = explicit.group(1) if explicit else slugify(title)
            if not slug:
                raise PolicyFileError(path, f"section heading {line.strip()!r} gives no id; add {{#an-id}}")
            if any(s == slug for s, _, _ in sections):
                raise PolicyFileError(path, f"two sections have the id {slug!r}; rename one or give it {{#an-id}}")
            sections.append((slug, _plain(title), []))
        elif heading and len(heading.group(1)) == 1 and not sections:
            continue  # the document's own title
        elif heading:
            raise PolicyFileError(
                path, f"heading {line.strip()!r}: only '## ' sections are passages; make it a '## ' section"
            )
        elif sections:
            sections[-1][2].append(line)
        elif line.strip():
            raise PolicyFileError(path, f"text before the first '## ' section (body line {n}): {line.strip()[:60]!r}")
    if not sections:
        raise PolicyFileError(path, "no '## ' sections: each section is a passage that answers questions")
    passages = []
    for slug, title, lines in sections:
        text = _section_text(lines)
        if not text:
            raise PolicyFileError(path, f"section {title!r} is empty")
        passages.append(
            Passage(
                id=f"{meta.id}#{slug}",
                policy=meta.id,
                policy_title=meta.title,
                title=title,
                text=text,
                topics=meta.topics,
                intents=meta.intents,
                updated=meta.updated,
            )
        )
    return PolicyDoc(path=path, meta=meta, passages=passages)


def _section_text(lines: list[str]) -> str:
    """A section's text: each paragraph and each list item on one line (Markdown joins a paragraph's lines)."""
    out: list[str] = []
    joining = False
    for line in lines:
        if not line.strip():
            joining = False
            continue
        item = _BULLET.match(line) is not None
        words = _plain(_BULLET.sub("", line))
        if joining and not item:
            out[-1] = f"{out[-1]} {words}"
        else:
            out.append(words)
        joining = True
    return "\n".join(re.sub(r"\s+", " ", p) for p in out)


def load_policies(directory: str | Path) -> list[PolicyDoc]:
    """Every `*.md` policy in `directory` (sorted by name), validated; policy ids are unique by construction."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no policy folder at {directory}")
    files = sorted(directory.glob("*.md"))
    if not files:
        raise FileNotFoundError(f"no policy files (*.md) in {directory}")
    return [parse_policy(f) for f in files]


def load_passages(directory: str | Path) -> list[Passage]:
    """The passages of every policy in `directory`, in file and section order."""
    return [p for doc in load_policies(directory) for p in doc.passages]
