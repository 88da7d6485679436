"""ATML step results as WATS steps: the part of the ATML converter that walks one result tree.

IEEE 1636.1 describes a run as nested ``<TestGroup>`` (a sequence), ``<Test>`` and
``<SessionAction>`` elements; TestStand adds a ``ts:TSStepProperties`` extension to each with the
real step type, group, times and loop counters. The step type decides the WATS step; the
``<Outcome>`` the station recorded is kept as the status, never recomputed from limits.
Measurements are read by ``_atml_measurements``.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from wats.api.models import (
    GenericStep,
    LoopInfo,
    SequenceCallInfo,
    SequenceCallStep,
    StepBase,
    StepGroup,
    StepStatus,
)
from wats.converters.builtin._atml_common import (
    NAME_LIMIT,
    AtmlError,
    WalkState,
    attr_value,
    child,
    children,
    describe,
    find,
    flag,
    given,
    int_value,
    outcome_status,
    parse_number,
    parse_time,
    short,
    text_of,
)
from wats.converters.builtin._atml_measurements import build_test
from wats.xmlsafe import local_name

__all__ = ["MAX_DEPTH", "build_sequence", "sequence_parts"]

MAX_DEPTH = 64
"""Deepest sequence nesting we follow; TestStand programs stay far below, hostile files do not."""

_STEP_ELEMENTS = ("Test", "SessionAction", "TestGroup")

_GROUPS = {"setup": StepGroup.SETUP, "main": StepGroup.MAIN, "cleanup": StepGroup.CLEANUP}

# TestStand step types that become measurement-less WATS steps under their own name (the WATS
# models and server know them, as they know every NI_* type). Any other action is "Action".
_KEPT_GENERIC_TYPES = frozenset(
    {"Action", "Statement", "Label", "Goto", "Wait", "MessagePopup", "CallExecutable"}
)


def build_sequence(
    element: Element, state: WalkState, *, depth: int, name: str | None = None
) -> SequenceCallStep:
    """A sequence-call step for a group element (``<TestGroup>``, a ``<ResultSet>``, or a
    ``<Test>`` of type SequenceCall), with every step element inside it, in document order."""
    if depth > MAX_DEPTH:
        raise AtmlError(f"{describe(element)}: sequences nested deeper than {MAX_DEPTH} levels")
    where = describe(element)
    path, sequence = sequence_parts(element)
    status = _recorded_status(child(element, "Outcome"), state, where)
    fields = _common(element, status, state, name or _caller_name(element) or sequence)
    steps = [
        built
        for item in element
        if local_name(item.tag) in _STEP_ELEMENTS
        for built in [build_step(item, state, depth=depth + 1)]
    ]
    call = SequenceCallInfo(**given(path=path, name=sequence or None))
    step = SequenceCallStep(**fields, seq_call=call, steps=steps)
    _remember(element, step, state)
    return step


def build_step(element: Element, state: WalkState, *, depth: int) -> StepBase:
    """The WATS step for one ``<Test>``, ``<SessionAction>`` or ``<TestGroup>`` element."""
    kind = local_name(element.tag)
    step_type = text_of(child(_step_properties(element), "StepType"))
    if kind == "TestGroup" or step_type == "SequenceCall":
        return build_sequence(element, state, depth=depth)
    where = describe(element)
    if kind == "SessionAction":
        outcome = child(element, "ActionOutcome")
        if outcome is None:
            outcome = child(element, "Outcome")
        status = _recorded_status(outcome, state, where)
        kept = step_type in _KEPT_GENERIC_TYPES or step_type.startswith("NI_")
        step: StepBase = GenericStep(
            **_common(element, status, state),
            step_type=step_type if kept else "Action",
        )
    else:
        status = _recorded_status(child(element, "Outcome"), state, where)
        step = build_test(element, step_type, status, state, _common(element, status, state))
    _remember(element, step, state)
    return step


def _recorded_status(outcome: Element | None, state: WalkState, where: str) -> StepStatus:
    """The status the station recorded; Done, with a warning, when it recorded none."""
    status = outcome_status(outcome, state, where)
    if status is None:
        state.warn(f"{where}: no outcome recorded; kept as Done")
        return StepStatus.DONE
    return status


def _remember(element: Element, step: StepBase, state: WalkState) -> None:
    result_id = element.get("ID")
    if result_id:
        state.by_result_id.setdefault(result_id, step)


def sequence_parts(element: Element) -> tuple[str | None, str]:
    """(sequence file path, sequence name) of a group named ``<file>#<sequence>``."""
    full = element.get("name") or ""
    path, hash_sign, sequence = full.partition("#")
    if hash_sign:
        return (path or None), sequence
    return None, full


def _caller_name(element: Element) -> str | None:
    """The calling step's name: ``callerName`` (ATML 5/6) or the ``SequenceCallStepName = 'X'``
    that TestStand puts in ``userDefinedType`` (ATML 2.02)."""
    caller = element.get("callerName")
    if caller:
        return caller
    defined = element.get("userDefinedType") or ""
    key, _, rest = defined.partition("=")
    if key.strip() == "SequenceCallStepName":
        return rest.strip().strip("'\"") or None
    return None


def _step_properties(element: Element) -> Element | None:
    return find(element, "Extension", "TSStepProperties")


def _common(
    element: Element, status: StepStatus, state: WalkState, name: str | None = None
) -> dict[str, Any]:
    """Fields every WATS step takes from an ATML step element and its TestStand extension;
    ``name`` overrides the element's own (sequences are named after their caller)."""
    props = _step_properties(element)
    if name is None:
        name = element.get("name") or ""
    if len(name) > NAME_LIMIT:
        state.warn(f"{describe(element)}: step name cut to {NAME_LIMIT} characters")
    fields: dict[str, Any] = {"name": short(name), "status": status}
    group = _GROUPS.get(text_of(child(props, "StepGroup")).lower())
    if group is not None:
        fields["group"] = group
    start, _ = parse_time(element.get("startDateTime"), state.tz)
    if start is not None:
        fields["start"] = start
    total = child(props, "TotalTime")
    if total is not None:
        fields["tot_time"] = parse_number(attr_value(total), f"{describe(element)} TotalTime")
    else:
        end, _ = parse_time(element.get("endDateTime"), state.tz)
        if start is not None and end is not None and end >= start:
            fields["tot_time"] = (end - start).total_seconds()
    report_text = _report_text(element)
    if report_text:
        fields["report_text"] = report_text
    if flag(child(props, "StepCausedSequenceFailure")):
        fields["caused_seq_failure"] = True
    guid = text_of(child(props, "StepId")) or element.get("testReferenceID")
    if guid:
        fields["ts_guid"] = guid
    loop = _loop(props)
    if loop is not None:
        fields["loop"] = loop
    code, message = _errors(element)
    if code is not None:
        fields["error_code"] = code
    if message:
        fields["error_message"] = message
    return fields


def _report_text(element: Element) -> str | None:
    for item in children(find(element, "Data", "Collection"), "Item"):
        if item.get("name") == "ReportText":
            datum = child(item, "Datum")
            text = text_of(child(datum, "Value")) if datum is not None else ""
            return text or None
    return None


def _errors(element: Element) -> tuple[int | None, str | None]:
    code: int | None = None
    message: str | None = None
    for event in children(child(element, "Events"), "Event"):
        datum = find(event, "Data", "Datum")
        if event.get("ID") == "Error Code":
            code = int_value(datum)
        elif event.get("ID") == "Error Message":
            message = text_of(child(datum, "Value")) or attr_value(datum) or None
    return code, message


def _loop(props: Element | None) -> LoopInfo | None:
    looping = child(props, "LoopingProperties")
    if looping is None:
        return None
    info = {
        "num": int_value(child(looping, "NumLoops")),
        "passed": int_value(child(looping, "NumPassed")),
        "failed": int_value(child(looping, "NumFailed")),
        "ending_index": int_value(child(looping, "EndingLoopIndex")),
        "idx": int_value(child(looping, "LoopIndex")),
    }
    given = {key: value for key, value in info.items() if value is not None}
    return LoopInfo(**given) if given else None
