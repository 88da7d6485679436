"""``wats-supervisor convert FILE``: run a converter on one file and show what it makes.

The converter author's loop: drop nothing into a watch folder, upload nothing, just see the
WSJF (or a step tree) the pipeline would queue. The conversion runs in the same sandbox, with
the same report ids and station stamp as in the converter worker, so what this prints is what
the server would receive.

Without ``--converter`` every candidate (configured converters first, then the built-ins) is
asked ``validate()`` in the sandbox and the most confident one converts; the choice and the
runners-up are printed on stderr so the user sees why. A folder is one source only to folder-kind
converters (the ones that read a run folder as a whole), so for a folder only those are asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from wats.api.models import dump_report, parse_report
from wats.api.models.codec import describe_validation_error
from wats.api.station import Station
from wats.cli.main import app
from wats.cli.options import ConfigOption, InstanceOption
from wats.config import ClientConfig, ConverterConfig, site_converters_dir
from wats.config.paths import InstancePaths
from wats.converters import BUILTIN_CONVERTERS, ConverterLoadError, load_converter_class
from wats.converters.identity import content_hash
from wats.converters.provenance import FieldOrigin, IdOrigin, ReportIdentity
from wats.converters.sandbox import Sandbox, SandboxError, SandboxOutcome

__all__ = ["convert"]

EXIT_CONVERSION_FAILED = 1
EXIT_USAGE = 2
DEFAULT_REJECT = 0.2
"""Below this ``validate()`` confidence a converter is not considered to know the file."""
FOLDER_KINDS = ("folder", "scheduled")
"""Converter kinds whose source is a folder (``ConverterSource`` of a folder), not a file."""


@dataclass
class _Candidate:
    """One converter that may read the file: a configured one or a built-in."""

    label: str
    spec: str
    arguments: dict[str, Any] = field(default_factory=dict)
    station: Station | None = None
    configured: bool = False
    kind: str | None = None
    """The configured ``kind`` (None: the converter class's own)."""
    preset: str = ""
    """The ``[stations.NAME]`` preset it names (empty: ``[station]``)."""
    override_file_station: bool = False


def _configured(cfg: ClientConfig, conv: ConverterConfig) -> _Candidate:
    return _Candidate(
        label=conv.name,
        spec=conv.converter,
        arguments=dict(conv.arguments),
        station=cfg.station_for(conv),
        configured=True,
        kind=conv.kind,
        preset=conv.station,
        override_file_station=cfg.overrides_file_station(conv),
    )


def _kind(candidate: _Candidate, code_dir: Path) -> str | None:
    """The kind the pipeline would run ``candidate`` as; None if its class does not load (the
    sandbox then reports why, as it does for any candidate)."""
    if candidate.kind is not None:
        return candidate.kind
    try:
        return load_converter_class(candidate.spec, code_dir).kind
    except ConverterLoadError:
        return None


def _candidates(cfg: ClientConfig) -> list[_Candidate]:
    found = [
        _configured(cfg, conv)
        for conv in cfg.converters
        if conv.enabled and conv.kind in (None, "file")
    ]
    configured_specs = {c.spec.lower() for c in found}
    found += [
        _Candidate(label=name, spec=name)
        for name in BUILTIN_CONVERTERS
        if name not in configured_specs
    ]
    return found


def _folder_candidates(cfg: ClientConfig, code_dir: Path) -> list[_Candidate]:
    """The converters that take a folder as one source: enabled configured ones of a folder
    kind (configured, or their class's), then any built-in of such a kind."""
    found = [
        candidate
        for candidate in (_configured(cfg, conv) for conv in cfg.converters if conv.enabled)
        if _kind(candidate, code_dir) in FOLDER_KINDS
    ]
    configured_specs = {c.spec.lower() for c in found}
    found += [
        candidate
        for candidate in (_Candidate(label=name, spec=name) for name in BUILTIN_CONVERTERS)
        if candidate.spec not in configured_specs and _kind(candidate, code_dir) in FOLDER_KINDS
    ]
    return found


def _named(cfg: ClientConfig, name: str) -> _Candidate:
    for conv in cfg.converters:
        if conv.name == name:
            return _configured(cfg, conv)
    return _Candidate(label=name, spec=name)


def _folder_hint(path: Path) -> str:
    """Why a folder found no converter, and what to do instead: a user who reads "file (or
    folder)" may expect the folder's files to be converted one by one, which is not so."""
    return (
        f'{path} is a folder: only folder-kind converters (kind = "folder") read a '
        "folder as one source; convert its files one by one, or pass --converter NAME of a "
        "folder-kind converter"
    )


def _context(cfg: ClientConfig, candidate: _Candidate, **extra: Any) -> dict[str, Any]:
    station = candidate.station or cfg.station_for(None)
    reference = InstancePaths.for_config(cfg).cache_dir / "reference.json"
    return {
        "station": station.model_dump(),
        "reference_file": str(reference) if reference.exists() else None,
        "converter_name": candidate.label,
        "reject_threshold": 0.0,
        "validate": False,
        **extra,
    }


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _pick(
    sandbox: Sandbox, cfg: ClientConfig, candidates: list[_Candidate], path: Path
) -> tuple[_Candidate, float]:
    """The most confident candidate and its ``validate()`` confidence (exit 1 if none knows
    ``path``)."""
    scores: list[tuple[float, int, _Candidate]] = []
    for order, candidate in enumerate(candidates):
        outcome = sandbox.convert(
            candidate.spec, candidate.arguments, path, _context(cfg, candidate, validate_only=True)
        )
        if outcome.ok:
            scores.append((outcome.confidence, -order, candidate))
        else:
            _say(f"  {candidate.label}: validate() failed ({outcome.failure}: {outcome.message})")
    scores.sort(key=lambda item: (item[0], item[1]), reverse=True)
    if not scores or scores[0][0] < DEFAULT_REJECT:
        # a "best" among converters that all said no reads as a near miss; it is not one
        asked = ", ".join(c.label for c in candidates)
        _say(
            f"error: no converter recognises {path.name} (asked: {asked}); if one of them "
            "should read it, name it with --converter to see why it does not"
        )
        if path.is_dir():
            _say(_folder_hint(path))
        raise typer.Exit(EXIT_CONVERSION_FAILED)
    confidence, _, chosen = scores[0]
    others = ", ".join(f"{c.label} {score:.2f}" for score, _, c in scores[1:])
    kind = "configured converter" if chosen.configured else "built-in converter"
    _say(
        f"using {kind} {chosen.label!r}: validate() confidence {confidence:.2f}, the highest"
        + (f" (others: {others})" if others else "")
    )
    return chosen, confidence


def _report_failure(outcome: SandboxOutcome, label: str) -> None:
    _say(f"error: {label} could not convert the file ({outcome.failure}): {outcome.message}")
    detail = outcome.detail or {}
    if detail.get("traceback"):
        _say(str(detail["traceback"]).rstrip())
    for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if text.strip():
            _say(f"converter {stream}:\n{text.rstrip()}")


def _identity_lines(
    wire: dict[str, Any], candidate: _Candidate, index: int, count: int
) -> list[str]:
    """Where report ``index``'s id and station came from, for ``--explain`` and ``--tree``."""
    identity = ReportIdentity.from_wire(wire)
    which = f"report {index + 1} of {count}" if count > 1 else "report"
    if identity.id_origin is IdOrigin.SOURCE:
        id_from = "the file's own id"
    else:
        id_from = "derived from the converter, the file's content and its place in the file"
    configured = f"[stations.{candidate.preset}]" if candidate.preset else "[station]"
    if candidate.override_file_station:
        configured += ", override_file_station"
    lines = [f"{which}: id {identity.id} ({id_from})"]
    for key, label in (("name", "station"), ("location", "location"), ("purpose", "purpose")):
        origin = identity.origins[key]
        source = "the file" if origin is FieldOrigin.FILE else f"the configuration ({configured})"
        lines.append(f"  {label:<9} {identity.station[key]!r} from {source}")
    return lines


def _reports(outcome: SandboxOutcome) -> list[Any]:
    """The queue bodies the sandbox stamped (the pipeline's ids and station), as models."""
    reports = []
    for index, body in enumerate(outcome.report_json):
        try:
            reports.append(parse_report(body))
        except ValidationError as exc:
            _say(
                f"error: report {index} is not a valid WATS report: "
                f"{describe_validation_error(exc)}"
            )
            raise typer.Exit(EXIT_CONVERSION_FAILED) from None
    return reports


@app.command()
def convert(
    file: Annotated[
        Path,
        typer.Argument(
            help="The test-station file to convert, or a run folder for a folder-kind converter.",
            exists=True,
        ),
    ],
    converter: Annotated[
        str | None,
        typer.Option(
            "--converter",
            help="A configured converter's name, a built-in name, 'file.py[:Class]' or "
            "'package.module:Class'. Default: the one whose validate() is most confident.",
        ),
    ] = None,
    tree: Annotated[
        bool,
        typer.Option(
            "--tree",
            help="Print a readable step tree instead of WSJF JSON, each report under its id "
            "and station and where they came from.",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Say on stderr where each report's id and station fields came from: the "
            "file, or the configuration (\\[station] or the converter's preset).",
        ),
    ] = False,
    config: ConfigOption = None,
    instance: InstanceOption = None,
) -> None:
    """Convert FILE in the sandbox and print the resulting WSJF report(s); uploads nothing.

    The report ids and the station identity are the ones the pipeline would use, so the output
    is exactly what would be queued: the file's own id (WSJF, WSXF) and the station the file
    records, the configured station filling only what the file leaves empty (unless
    override_file_station is set). --explain and --tree say which came from where.

    Messages (which converter, warnings, errors) go to stderr,
    the report to stdout. Exit code 1 when no converter recognises the file or the conversion
    fails (the reason is printed, as it would be in the error file).

    A folder is converted as one source, by a folder-kind converter (kind = "folder"), never
    file by file.
    """
    from wats.cli.config_cmd import load_config_or_exit

    cfg, _source = load_config_or_exit(config, instance)
    code_dir = site_converters_dir(cfg)
    path = file.resolve()
    validated: float | None = None  # validate()'s confidence, when it picked the converter
    with Sandbox(converters_dir=code_dir) as sandbox:
        try:
            if converter is not None:
                chosen = _named(cfg, converter)
                loaded = load_converter_class(chosen.spec, code_dir)  # a clear error first
                kind = chosen.kind or loaded.kind
                if path.is_dir() and kind not in FOLDER_KINDS:
                    _say(f"error: converter {chosen.label!r} is of kind {kind!r}, for files")
                    _say(_folder_hint(path))
                    raise typer.Exit(EXIT_USAGE)
            elif path.is_dir():
                folder_candidates = _folder_candidates(cfg, code_dir)
                if not folder_candidates:
                    _say("error: no folder-kind converter is configured or built in")
                    _say(_folder_hint(path))
                    raise typer.Exit(EXIT_CONVERSION_FAILED)
                chosen, validated = _pick(sandbox, cfg, folder_candidates, path)
            else:
                chosen, validated = _pick(sandbox, cfg, _candidates(cfg), path)
        except ConverterLoadError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except SandboxError as exc:
            _say(f"error: the converter sandbox could not start: {exc}")
            raise typer.Exit(EXIT_CONVERSION_FAILED) from None
        # the sandbox stamps ids and station exactly as it does for the converter worker
        stamp = {
            "name": chosen.label,
            "digest": content_hash(path),
            "override_file_station": chosen.override_file_station,
        }
        outcome = sandbox.convert(
            chosen.spec, chosen.arguments, path, _context(cfg, chosen, stamp=stamp)
        )
    if not outcome.ok:
        _report_failure(outcome, chosen.label)
        raise typer.Exit(EXIT_CONVERSION_FAILED)
    for warning in outcome.warnings:
        _say(f"warning: {warning}")
    if outcome.confidence < 1.0:
        # two numbers from two calls: say which is which, or they read as a contradiction
        said = f" (validate() said {validated:.2f})" if validated is not None else ""
        _say(
            f"convert() result confidence {outcome.confidence:.2f}{said}; the pipeline checks "
            "this one against the converter's alarm_threshold and reject_threshold"
        )
    reports = _reports(outcome)
    if not reports:
        _say(f"{chosen.label} returned no reports for {path.name}")
        return
    explained = [
        "\n".join(_identity_lines(wire, chosen, index, len(reports)))
        for index, wire in enumerate(outcome.identities)
    ]
    if tree:
        from wats.cli.report_tree import format_report_tree

        typer.echo(
            "\n\n".join(
                f"{explanation}\n{format_report_tree(r)}"
                for explanation, r in zip(explained, reports, strict=True)
            )
        )
        return
    if explain:
        for explanation in explained:
            _say(explanation)
    bodies = [dump_report(r) for r in reports]
    document = bodies[0] if len(bodies) == 1 else bodies
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
