"""The operator's commands for colleges, universities and studies (on the database file).

    zhol adapter education institutions --db education.db [--region R] [--district D] [--kind K]
    zhol adapter education studies --db education.db --iin IIN
    zhol adapter education record-study --db education.db --iin IIN --institution ID \\
        --level LEVEL --form FORM --started-on YYYY-MM-DD
    zhol adapter education end-study --db education.db --iin IIN --study-id N [--ended-on DATE]

They work on the SQLite file with the same store and rules as the gRPC service (one
transaction per write; a refused one changes nothing), for the ministry's operator
entering an institution's order. ``record-study`` does not ask population whether the
person exists and is alive (no bus here): ``RecordStudy`` over gRPC does. Exit 0 done,
1 refused (unknown institution or study, already studying there, level not taught,
study already ended), 2 a bad argument or no database (nothing changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from zhol.adapters.education.model import (
    EducationError,
    InvalidInput,
    Study,
    StudyForm,
    StudyLevel,
    StudyRequest,
)
from zhol.adapters.education.service import institution_pb, study_pb
from zhol.adapters.education.store import EducationStore
from zhol.core.clock import SystemClock
from zhol.core.errors import ZholError
from zhol.core.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from zhol.core.iin import Iin


def add_parsers(commands: Any) -> None:
    """Register the four commands under ``zhol adapter education``."""
    listing = commands.add_parser("institutions", help="list colleges and universities")
    _db(listing)
    listing.add_argument("--region", default="", help="only this region")
    listing.add_argument("--district", default="", help="only this district")
    listing.add_argument("--kind", default="", choices=("", "college", "university"),
                         help="only colleges or only universities")
    listing.set_defaults(func=_command(_institutions))

    studies = commands.add_parser("studies", help="a person's studies, newest first")
    _db(studies)
    studies.add_argument("--iin", required=True, help="the person's IIN")
    studies.set_defaults(func=_command(_studies))

    record = commands.add_parser(
        "record-study", help="record a student's admission (the institution's order)",
        description="Record a study at a college or university. Population is not asked"
        " (no bus): RecordStudy over gRPC checks that the person exists and is alive.",
    )
    _db(record)
    record.add_argument("--iin", required=True, help="the student's IIN")
    record.add_argument("--institution", required=True, help="COL-... or UNI-...")
    record.add_argument("--level", required=True, choices=[v.value for v in StudyLevel],
                        help="vocational at a college; bachelor, master, doctoral at a university")
    record.add_argument("--form", required=True, choices=[v.value for v in StudyForm],
                        help="full_time or part_time")
    record.add_argument("--started-on", required=True, type=_date, help="YYYY-MM-DD")
    record.set_defaults(func=_command(_record))

    end = commands.add_parser("end-study", help="end a study (graduation, expulsion)")
    _db(end)
    end.add_argument("--iin", required=True, help="the student's IIN")
    end.add_argument("--study-id", required=True, type=int, help="the study to end")
    end.add_argument("--ended-on", type=_date, help="its last day, YYYY-MM-DD (default today)")
    end.set_defaults(func=_command(_end))


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, required=True, help="the education SQLite file")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


def _command(
    run: Callable[[EducationStore, argparse.Namespace], list[Message]],
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        if not args.db.is_file():
            print(f"error: no education database at {args.db}", file=sys.stderr)
            return EXIT_USAGE
        store = EducationStore.open(args.db, SystemClock())
        try:
            answers = run(store, args)
        except (InvalidInput, ZholError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except EducationError as err:
            print(f"refused: {err}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            store.close()
        for answer in answers:
            if args.json:
                print(json_format.MessageToJson(answer, indent=None))
            else:
                print(_line(answer))
        return EXIT_OK

    return command


def _institutions(store: EducationStore, args: argparse.Namespace) -> list[Message]:
    found = store.list_institutions(args.region, args.district, args.kind)
    return [institution_pb(i) for i in found]


def _studies(store: EducationStore, args: argparse.Namespace) -> list[Message]:
    return [study_pb(s) for s in store.list_studies(Iin.parse(args.iin))]


def _record(store: EducationStore, args: argparse.Namespace) -> list[Message]:
    request = StudyRequest(Iin.parse(args.iin), args.institution, StudyLevel(args.level),
                           StudyForm(args.form), args.started_on)
    return [study_pb(store.record_study(request))]


def _end(store: EducationStore, args: argparse.Namespace) -> list[Message]:
    ended: Study = store.end_study(Iin.parse(args.iin), args.study_id, args.ended_on)
    return [study_pb(ended)]


def _line(answer: Message) -> str:
    fields = json_format.MessageToDict(answer)
    if "studyId" in fields:
        where = fields["institution"]
        until = _day(fields["endedOn"]) if "endedOn" in fields else "now"
        return (f"study {fields['studyId']} {fields['iin']}: {fields['institutionId']}"
                f" ({where['district']}, {where['region']}) {fields['level']}"
                f" {fields['form']} from {_day(fields['startedOn'])} to {until}")
    return (f"{fields['institutionId']} {fields['kind']}: {fields['name']},"
            f" {fields['district']}, {fields['region']} ({fields.get('students', 0)} students)")


def _day(date: dict[str, int]) -> str:
    return f"{date['year']:04d}-{date['month']:02d}-{date['day']:02d}"
