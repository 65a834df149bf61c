"""ITI-18 patient-based queries over real HTTP: Find*, GetAll, ITI-51 (ITI TF-2 §3.18.4.1.2.3.7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from tests import samples
from tests.registry.iti18_support import (
    ITI51, assert_found, document, query, registered, replaced, submit,
)
from tests.registry.iti42_support import associations, entry
from tests.samples import (
    APPROVED, DEPRECATED, ON_DEMAND, STABLE, Author, Code, code_list, quoted, quoted_list,
)
from xds.store import tables

Patient = Callable[..., str]


def fresh_code(display: str = "test code") -> Code:
    """A code no other test uses (the session database is shared)."""
    return Code(f"C{samples.new_uuid()[9:17]}", "1.3.6.1.4.1.21367.2017.3", display)


def find(pid: str, *extra: tuple[str, str | list[str]],
         status: tuple[str, ...] = (APPROVED,)) -> list[tuple[str, str | list[str]]]:
    return [("$XDSDocumentEntryPatientId", quoted(pid)),
            ("$XDSDocumentEntryStatus", quoted_list(status)), *extra]


def found(url: str, pid: str, *extra: tuple[str, str | list[str]], **kw: Any) -> set[str]:
    answer = query(url, "FindDocuments", find(pid, *extra, **kw))
    assert_found(answer, document_entries=answer.document_entries)
    return answer.document_entries


# -- FindDocuments --------------------------------------------------------------------------------


def test_find_documents_by_status(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    old, new = replaced(registry_url, pid)
    assert found(registry_url, pid) == {new}
    assert found(registry_url, pid, status=(DEPRECATED,)) == {old}
    assert found(registry_url, pid, status=(APPROVED, DEPRECATED)) == {old, new}


def test_find_documents_by_single_valued_codes(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    x = fresh_code()
    (plain,) = registered(registry_url, pid)
    (coded,) = registered(registry_url, pid, class_code=x, type_code=x, practice_setting_code=x,
                          healthcare_facility_type_code=x, format_code=x)
    for param, default in (
        ("$XDSDocumentEntryClassCode", samples.CLASS_CODE),
        ("$XDSDocumentEntryTypeCode", samples.TYPE_CODE),
        ("$XDSDocumentEntryPracticeSettingCode", samples.PRACTICE_SETTING_CODE),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", samples.HEALTHCARE_FACILITY_TYPE_CODE),
        ("$XDSDocumentEntryFormatCode", samples.FORMAT_CODE),
    ):
        assert found(registry_url, pid, (param, code_list([x]))) == {coded}, param
        assert found(registry_url, pid, (param, code_list([default]))) == {plain}, param
        assert found(registry_url, pid, (param, code_list([default, x]))) == {plain, coded}, param
        # same code, other scheme: no match
        other = Code(x.code, "1.2.3.4.5", x.display)
        assert found(registry_url, pid, (param, code_list([other]))) == set(), param


def test_find_documents_creation_time_from_inclusive_to_exclusive(
        registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    (doc,) = registered(registry_url, pid, creation_time="20240102030405")
    From, To = "$XDSDocumentEntryCreationTimeFrom", "$XDSDocumentEntryCreationTimeTo"
    assert found(registry_url, pid, (From, "20240102030405")) == {doc}
    assert found(registry_url, pid, (From, "20240102030406")) == set()
    assert found(registry_url, pid, (To, "20240102030405")) == set()
    assert found(registry_url, pid, (To, "20240102030406")) == {doc}
    assert found(registry_url, pid, (From, "202401"), (To, "202402")) == {doc}
    assert found(registry_url, pid, (From, "2023"), (To, "20240102")) == set()
    # a zone converts to UTC: 04:04:05+0100 is 03:04:05Z
    assert found(registry_url, pid, (From, "20240102040405+0100")) == {doc}


def test_find_documents_service_times_do_not_exclude_entries_without_them(
        registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    (timed,) = registered(registry_url, pid, service_start_time="20240101080000",
                          service_stop_time="20240101090000")
    (untimed,) = registered(registry_url, pid, service_start_time=None, service_stop_time=None)
    start, stop = "$XDSDocumentEntryServiceStartTime", "$XDSDocumentEntryServiceStopTime"
    start_from, start_to = start + "From", start + "To"
    stop_from, stop_to = stop + "From", stop + "To"
    assert found(registry_url, pid, (start_from, "2025")) == {untimed}
    assert found(registry_url, pid, (start_from, "20240101080000")) == {timed, untimed}
    assert found(registry_url, pid, (start_to, "20240101080000")) == {untimed}
    assert found(registry_url, pid, (stop_to, "20240101090000")) == {untimed}
    assert found(registry_url, pid, (stop_from, "2024"), (stop_to, "20240101090001")) == {
        timed, untimed}


def test_find_documents_event_codes_or_within_and_across_slots(
        registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    a, b, c = fresh_code(), fresh_code(), fresh_code()
    (ab,) = registered(registry_url, pid, event_codes=[a, b])
    (only_a,) = registered(registry_url, pid, event_codes=[a])
    (only_c,) = registered(registry_url, pid, event_codes=[c])
    (none,) = registered(registry_url, pid)
    ev = "$XDSDocumentEntryEventCodeList"
    assert found(registry_url, pid) == {ab, only_a, only_c, none}
    assert found(registry_url, pid, (ev, code_list([a]))) == {ab, only_a}
    assert found(registry_url, pid, (ev, code_list([a, c]))) == {ab, only_a, only_c}
    assert found(registry_url, pid, (ev, code_list([a])), (ev, code_list([b]))) == {ab}
    # (a OR c) AND b
    assert found(registry_url, pid, (ev, code_list([a, c])), (ev, code_list([b]))) == {ab}
    assert found(registry_url, pid, (ev, code_list([c])), (ev, code_list([b]))) == set()


def test_find_documents_confidentiality_codes_and_or(
        registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    n, r = samples.CONFIDENTIALITY_CODE, Code("R", "2.16.840.1.113883.5.25", "restricted")
    (normal,) = registered(registry_url, pid)
    (both,) = registered(registry_url, pid, confidentiality_codes=[n, r])
    cc = "$XDSDocumentEntryConfidentialityCode"
    assert found(registry_url, pid, (cc, code_list([n]))) == {normal, both}
    assert found(registry_url, pid, (cc, code_list([r]))) == {both}
    assert found(registry_url, pid, (cc, code_list([n])), (cc, code_list([r]))) == {both}


def test_find_documents_author_person_like(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    (welby,) = registered(registry_url, pid)  # ^Welby^Marcus^^^Dr^MD
    (star,) = registered(registry_url, pid, authors=[Author(person="^Star*Name^Jo_e^^^^")])
    (odd,) = registered(registry_url, pid, authors=[
        Author(person="^Back\\slash!Bang[1]^^^^^"), Author(person="^Second^^^^^")])
    (anonymous,) = registered(registry_url, pid, authors=[Author(person=None)])
    au = "$XDSDocumentEntryAuthorPerson"
    assert found(registry_url, pid) == {welby, star, odd, anonymous}
    assert found(registry_url, pid, (au, quoted_list(["%Welby%"]))) == {welby}
    assert found(registry_url, pid, (au, quoted_list(["^Welby^Marcus^^^Dr^MD"]))) == {welby}
    assert found(registry_url, pid, (au, quoted_list(["%welby%"]))) == set()  # case sensitive
    assert found(registry_url, pid, (au, quoted_list(["^Welby"]))) == set()   # no implicit %
    assert found(registry_url, pid, (au, quoted_list(["^_elby%"]))) == {welby}
    assert found(registry_url, pid, (au, quoted_list(["%Welby%", "%Jo_e%"]))) == {welby, star}
    # other engines' wildcards are literal characters
    assert found(registry_url, pid, (au, quoted_list(["%Star*Name%"]))) == {star}
    assert found(registry_url, pid, (au, quoted_list(["%Star?Name%"]))) == set()
    assert found(registry_url, pid, (au, quoted_list(["%St*%"]))) == set()
    assert found(registry_url, pid, (au, quoted_list(["%Star_Name%"]))) == {star}
    assert found(registry_url, pid, (au, quoted_list(["%Back\\slash!Bang[1]%"]))) == {odd}
    assert found(registry_url, pid, (au, quoted_list(["%[1]%"]))) == {odd}
    assert found(registry_url, pid, (au, quoted_list(["%Bang[1%"]))) == {odd}
    assert found(registry_url, pid, (au, quoted_list(["%^Second^%"]))) == {odd}


def _on_demand_copy(engine: Engine, entry_uuid: str) -> str:
    """An On-Demand entry cloned from a registered one, straight into the index.

    ITI-42 refuses On-Demand entries (they come by ITI-61, not yet served), so this is the only
    way to have one; the clone has no creationTime, as On-Demand entries never do.
    """
    row = entry(engine, entry_uuid)._asdict()
    new_id = samples.new_uuid()
    row.update(id=new_id, lid=new_id, unique_id=samples.new_oid(), object_type=ON_DEMAND,
               creation_time=None, xml=row["xml"].replace(entry_uuid.encode(), new_id.encode())
               .replace(STABLE.encode(), ON_DEMAND.encode()))
    with engine.begin() as conn:
        conn.execute(insert(tables.document_entry).values(**row))
    return new_id


def test_find_documents_entry_type(registry_url: str, engine: Engine,
                                   new_patient: Patient) -> None:
    pid = new_patient()
    (stable,) = registered(registry_url, pid)
    on_demand = _on_demand_copy(engine, stable)
    ty = "$XDSDocumentEntryType"
    assert found(registry_url, pid) == {stable}  # Stable only unless asked (point 33)
    assert found(registry_url, pid, (ty, quoted_list([ON_DEMAND]))) == {on_demand}
    assert found(registry_url, pid, (ty, quoted_list([STABLE, ON_DEMAND]))) == {stable, on_demand}
    # creationTime bounds do not apply to On-Demand entries (point 32)
    both = (ty, quoted_list([STABLE, ON_DEMAND]))
    assert found(registry_url, pid, both, ("$XDSDocumentEntryCreationTimeFrom", "2030")) == {
        on_demand}
    answer = query(registry_url, "GetDocuments", {"$XDSDocumentEntryEntryUUID": quoted(on_demand)})
    assert_found(answer, document_entries=[on_demand])
    assert answer.elements[on_demand].get("objectType") == ON_DEMAND


# -- FindDocumentsByReferenceId -------------------------------------------------------------------


def test_find_documents_by_reference_id(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    ref1 = "ACC-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:accession"
    ref2 = "ORD,2^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order"  # a comma inside the quotes
    (both,) = registered(registry_url, pid, reference_ids=[ref1, ref2])
    (one,) = registered(registry_url, pid, reference_ids=[ref1])
    registered(registry_url, pid)
    rl = "$XDSDocumentEntryReferenceIdList"

    def by_ref(*slots: tuple[str, str]) -> set[str]:
        answer = query(registry_url, "FindDocumentsByReferenceId", find(pid, *slots))
        assert_found(answer, document_entries=answer.document_entries)
        return answer.document_entries

    assert by_ref((rl, quoted_list([ref1]))) == {both, one}
    assert by_ref((rl, quoted_list([ref2]))) == {both}
    assert by_ref((rl, quoted_list([ref2, "nothing^^^^x"]))) == {both}
    assert by_ref((rl, quoted_list([ref1])), (rl, quoted_list([ref2]))) == {both}
    assert by_ref((rl, quoted_list(["ACC-%"]))) == set()  # exact match, not LIKE
    answer = query(registry_url, "FindDocumentsByReferenceId", find(pid))
    assert answer.errors[0].errorCode == "XDSStoredQueryMissingParam"


# -- FindDocumentsForMultiplePatients / FindFoldersForMultiplePatients (ITI-51) -------------------


def test_find_documents_for_multiple_patients(registry_url: str, new_patient: Patient) -> None:
    a, b, c = new_patient(), new_patient(), new_patient()
    cls = fresh_code()
    docs = registered(registry_url, a, class_code=cls) + registered(registry_url, b, class_code=cls)
    registered(registry_url, a)
    registered(registry_url, c)
    status = ("$XDSDocumentEntryStatus", quoted_list([APPROVED]))
    by_class = ("$XDSDocumentEntryClassCode", code_list([cls]))
    answer = query(registry_url, "FindDocumentsForMultiplePatients", [status, by_class],
                   action=ITI51)
    assert_found(answer, document_entries=docs)
    answer = query(registry_url, "FindDocumentsForMultiplePatients", [
        status, by_class, ("$XDSDocumentEntryPatientId", quoted_list([b, c]))], "ObjectRef",
        action=ITI51)
    assert_found(answer, object_refs=docs[1:])
    answer = query(registry_url, "FindDocumentsForMultiplePatients", [status], action=ITI51)
    assert answer.errors[0].errorCode == "XDSStoredQueryMissingParam"


def test_find_folders_for_multiple_patients(registry_url: str, new_patient: Patient) -> None:
    a, b = new_patient(), new_patient()
    code = fresh_code()
    fa, fb = _folders(registry_url, a, [[code]]) + _folders(registry_url, b, [[code]])
    _folders(registry_url, a, [[samples.FOLDER_CODE]])
    answer = query(registry_url, "FindFoldersForMultiplePatients", [
        ("$XDSFolderStatus", quoted_list([APPROVED])), ("$XDSFolderCodeList", code_list([code]))],
        action=ITI51)
    assert_found(answer, folders=[fa, fb])


# -- FindSubmissionSets ---------------------------------------------------------------------------


def test_find_submission_sets(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    other_source, content = samples.new_oid(), fresh_code()
    first, second = samples.new_uuid(), samples.new_uuid()
    registered(registry_url, pid, ss_id=first)
    _, de = document(pid)
    submit(registry_url, samples.submission_set(
        second, patient_id=pid, source_id=other_source, submission_time="20240210120000",
        content_type_code=content, authors=[Author(person="^Other^Olga^^^^")]),
        de, samples.has_member(samples.new_uuid(), second, de.get("id") or "", "Original"))

    def sets(*extra: tuple[str, str], status: str = APPROVED) -> set[str]:
        answer = query(registry_url, "FindSubmissionSets", [
            ("$XDSSubmissionSetPatientId", quoted(pid)),
            ("$XDSSubmissionSetStatus", quoted_list([status])), *extra])
        assert_found(answer, submission_sets=answer.submission_sets)
        return answer.submission_sets

    assert sets() == {first, second}
    assert sets(status=DEPRECATED) == set()
    assert sets(("$XDSSubmissionSetSourceId", quoted_list([other_source]))) == {second}
    assert sets(("$XDSSubmissionSetSourceId", quoted_list([samples.SOURCE_ID, other_source]))) == {
        first, second}
    assert sets(("$XDSSubmissionSetContentType", code_list([content]))) == {second}
    assert sets(("$XDSSubmissionSetContentType", code_list([samples.CONTENT_TYPE_CODE]))) == {first}
    assert sets(("$XDSSubmissionSetAuthorPerson", quoted("%Welby%"))) == {first}
    assert sets(("$XDSSubmissionSetAuthorPerson", quoted("^Other^%"))) == {second}
    assert sets(("$XDSSubmissionSetSubmissionTimeFrom", "20240210120000"),
                ("$XDSSubmissionSetSubmissionTimeTo", "20240210120001")) == {second}
    assert sets(("$XDSSubmissionSetSubmissionTimeTo", "20240210120000")) == set()
    # the first one was submitted now
    assert sets(("$XDSSubmissionSetSubmissionTimeFrom", "2025")) == {first}


def test_find_submission_sets_author_is_single_valued(registry_url: str) -> None:
    answer = query(registry_url, "FindSubmissionSets", [
        ("$XDSSubmissionSetPatientId", quoted(samples.new_patient_id())),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
        ("$XDSSubmissionSetAuthorPerson", quoted_list(["%a%", "%b%"]))])
    assert answer.errors[0].errorCode == "XDSStoredQueryParamNumber"


# -- FindFolders ----------------------------------------------------------------------------------


def _folders(url: str, pid: str, code_sets: list[list[Code]]) -> list[str]:
    """Register one Folder per code set in one SubmissionSet; their entryUUIDs."""
    ss = samples.new_uuid()
    objects = [samples.submission_set(ss, patient_id=pid)]
    ids = []
    for codes in code_sets:
        fd = samples.new_uuid()
        ids.append(fd)
        objects += [samples.folder(fd, patient_id=pid, codes=codes),
                    samples.has_member(samples.new_uuid(), ss, fd)]
    submit(url, objects)
    return ids


def test_find_folders_code_list_and_or(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    f, x, y = samples.FOLDER_CODE, fresh_code(), fresh_code()
    f1, f2, f3 = _folders(registry_url, pid, [[f], [f, x], [y]])
    cl = "$XDSFolderCodeList"

    def folders(*extra: tuple[str, str], status: str = APPROVED) -> set[str]:
        answer = query(registry_url, "FindFolders", [
            ("$XDSFolderPatientId", quoted(pid)), ("$XDSFolderStatus", quoted_list([status])),
            *extra])
        assert_found(answer, folders=answer.folders)
        return answer.folders

    assert folders() == {f1, f2, f3}
    assert folders(status=DEPRECATED) == set()
    assert folders((cl, code_list([f]))) == {f1, f2}
    assert folders((cl, code_list([x, y]))) == {f2, f3}
    assert folders((cl, code_list([f])), (cl, code_list([x]))) == {f2}
    assert folders((cl, code_list([f])), (cl, code_list([y]))) == set()


def test_find_folders_last_update_time(registry_url: str, new_patient: Patient) -> None:
    pid = new_patient()
    before = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y%m%d%H%M%S")
    (fd,) = _folders(registry_url, pid, [[samples.FOLDER_CODE]])
    after = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y%m%d%H%M%S")
    base = [("$XDSFolderPatientId", quoted(pid)), ("$XDSFolderStatus", quoted_list([APPROVED]))]
    answer = query(registry_url, "FindFolders", [
        *base, ("$XDSFolderLastUpdateTimeFrom", before), ("$XDSFolderLastUpdateTimeTo", after)])
    assert_found(answer, folders=[fd])
    (stamp,) = answer.slot(fd, "lastUpdateTime")
    assert before <= stamp < after and len(stamp) == 14
    assert_found(query(registry_url, "FindFolders", [
        *base, ("$XDSFolderLastUpdateTimeTo", before)]))
    assert_found(query(registry_url, "FindFolders", [
        *base, ("$XDSFolderLastUpdateTimeFrom", after)]))


# -- GetAll ---------------------------------------------------------------------------------------


def test_get_all(registry_url: str, engine: Engine, new_patient: Patient) -> None:
    pid = new_patient()
    fmt = fresh_code()
    ss1, fd = samples.new_uuid(), samples.new_uuid()
    doc1, de1 = document(pid)
    doc2, de2 = document(pid, format_code=fmt)
    fd_de = samples.new_uuid()
    submit(registry_url, samples.submission_set(ss1, patient_id=pid), de1, de2,
           samples.folder(fd, patient_id=pid),
           samples.has_member(samples.new_uuid(), ss1, doc1, "Original"),
           samples.has_member(samples.new_uuid(), ss1, doc2, "Original"),
           samples.has_member(samples.new_uuid(), ss1, fd),
           samples.has_member(fd_de, fd, doc1),
           samples.has_member(samples.new_uuid(), ss1, fd_de))
    ss2, rplc = samples.new_uuid(), samples.new_uuid()
    doc3, de3 = document(pid)
    submit(registry_url, samples.submission_set(ss2, patient_id=pid), de3,
           samples.has_member(samples.new_uuid(), ss2, doc3, "Original"),
           samples.association(rplc, "RPLC", doc3, doc1))
    all_associations = {a.id for a in associations(engine, pid)}
    assert rplc in all_associations and fd_de in all_associations

    def get_all(*extra: tuple[str, str], statuses: tuple[str, ...] = (APPROVED,),
                return_type: str = "LeafClass") -> Any:
        return query(registry_url, "GetAll", [
            ("$patientId", quoted(pid)),
            ("$XDSDocumentEntryStatus", quoted_list(statuses)),
            ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
            ("$XDSFolderStatus", quoted_list([APPROVED])), *extra], return_type)

    # every Association touches a returned SubmissionSet or Folder, so all come back
    assert_found(get_all(), document_entries=[doc2, doc3], submission_sets=[ss1, ss2],
                 folders=[fd], associations=all_associations)
    assert_found(get_all(statuses=(APPROVED, DEPRECATED)), document_entries=[doc1, doc2, doc3],
                 submission_sets=[ss1, ss2], folders=[fd], associations=all_associations)
    # filtered by format: doc3 and (deprecated) doc1 are out, so their RPLC is not returned
    assert_found(get_all(("$XDSDocumentEntryFormatCode", code_list([fmt]))),
                 document_entries=[doc2], submission_sets=[ss1, ss2], folders=[fd],
                 associations=all_associations - {rplc})
    assert_found(get_all(return_type="ObjectRef"),
                 object_refs={doc2, doc3, ss1, ss2, fd} | all_associations)
    # other patients' objects never appear
    other = new_patient()
    registered(registry_url, other)
    assert_found(query(registry_url, "GetAll", [
        ("$patientId", quoted(samples.new_patient_id())),
        ("$XDSDocumentEntryStatus", quoted_list([APPROVED])),
        ("$XDSSubmissionSetStatus", quoted_list([APPROVED])),
        ("$XDSFolderStatus", quoted_list([APPROVED]))]))
