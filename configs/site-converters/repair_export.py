"""Repair station exports as WATS repair (UUR) reports: an example of a *scheduled* converter.

The repair station cannot push its results; it drops an export file now and then into a folder
(one UUR report, or a JSON list of them, in WATS JSON (WSJF), as its export function writes
them). This converter is run on a schedule (configs/hub.toml: ``cron = "*/15 6-22 * * mon-fri"``,
``run_on_startup = true``): at each run the converter worker hands it the watch folder, and it
turns every ``*.json`` file there into reports. Tested by
tests/unit/test_site_converter_examples.py and tests/integration/test_converter_schedule.py.

It deletes nothing itself (a converter only reads). What happens to the export files afterwards
is the converter entry's ``post_action``, applied by the worker once every report of the run is
durably queued, to the files that were there when the run started: ``delete`` (as in
configs/hub.toml), ``move``/``archive`` (into ``<done|archive>/<name>-<slot>/``) or ``keep``
(then the same exports are read again at the next run; their ids differ per run, so only keep
when the exporter replaces its files).

A file that is not a valid UUR report fails the whole run, naming the file and the field, and
nothing of that run is queued or removed: better an error file every run until someone looks
than a repair record silently dropped. The station sets ``location`` / ``purpose`` on the
reports (the worker stamps the configured station's identity on them anyway).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ValidationError

from wats.api.models import UURReport, parse_report
from wats.api.models.codec import describe_validation_error
from wats.converters import ConverterBase, ConverterContext, ConverterResult, ConverterSource


class RepairExportArguments(BaseModel):
    """``arguments = { ... }`` of a repair-export entry."""

    # Refuse a repair report that does not name the failed test report it repairs (refUUT).
    require_ref_uut: bool = False


class RepairExportConverter(ConverterBase):
    """Repair station WSJF exports (UUR reports) collected from a folder on a schedule."""

    name = "repair-export"
    version = "1.0"
    kind = "scheduled"
    file_patterns = ("*.json",)
    Arguments = RepairExportArguments

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        args = context.arguments
        assert isinstance(args, RepairExportArguments)
        # Every export in the folder (sub-folders too): the post action settles every file
        # that was there when the run started, so none may be left unread.
        exports = [path for path in source.files() if self.matches(path.name)]
        reports: list[UURReport] = []
        for path in exports:
            try:
                data = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError) as exc:
                return ConverterResult.fail(f"{path.name}: not readable JSON ({exc})")
            items = data if isinstance(data, list) else [data]
            for index, item in enumerate(items):
                where = f"{path.name}" + (f", report {index}" if len(items) > 1 else "")
                if not isinstance(item, dict) or item.get("type") != "R":
                    return ConverterResult.fail(f'{where}: not a repair report (type "R")')
                try:
                    report = parse_report(item)
                except ValidationError as exc:
                    return ConverterResult.fail(f"{where}: {describe_validation_error(exc)}")
                assert isinstance(report, UURReport)
                if args.require_ref_uut and report.uur.ref_uut is None:
                    return ConverterResult.fail(f"{where}: uur.refUUT is missing")
                reports.append(report)
        context.log.info("repair exports read", files=len(exports), reports=len(reports))
        return ConverterResult.ok(reports)
