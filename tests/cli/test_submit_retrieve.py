"""``xds submit`` and ``xds retrieve`` against the running server, and the client's peak memory
while a 200 MB document goes up and comes back (measured on the real CLI process)."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from tests import samples
from tests.server import free_port
from xds.cli import app
from xds.config import Settings
from xds.ebrim.documententry import parse_document_entry

runner = CliRunner()
_RIM = "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}"


def _submit(server: str, *args: str) -> tuple[int, str, str, list[str]]:
    """Exit code, stdout, stderr and the document uniqueIds printed by ``xds submit``."""
    result = runner.invoke(app, ["submit", *args, "--url", server + "/xds/repository"])
    return (result.exit_code, result.stdout, result.stderr,
            re.findall(r"^document uniqueId: (\S+)", result.stdout, re.M))


def test_submit_prints_unique_ids_and_query_finds_the_documents(
    server: str, registry_url: str, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    pid = new_patient()
    (tmp_path / "ct.pdf").write_bytes(b"%PDF-1.4 ct")
    (tmp_path / "notes.txt").write_text("notes")
    code, out, err, uids = _submit(
        server, str(tmp_path / "ct.pdf"), str(tmp_path / "notes.txt"), "--patient", pid,
        "--title", "Imaging report", "--class-code", "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1^Reports",
        "--confidentiality-code", "N^^2.16.840.1.113883.5.25", "--confidentiality-code",
        "R^^2.16.840.1.113883.5.25^restricted", "--author-person", "^Welby^Marcus^^^Dr^MD")
    assert code == 0, out + err
    assert "status: Success" in out
    assert re.search(r"^submissionSet uniqueId: 2\.25\.\d+$", out, re.M)
    assert len(uids) == 2 and all(u.startswith("2.25.") for u in uids)

    query = runner.invoke(app, ["query", "find-documents", pid, "--url", registry_url, "--xml"])
    assert query.exit_code == 0, query.output
    entries = [parse_document_entry(el)
               for el in etree.fromstring(query.stdout).iter(_RIM + "ExtrinsicObject")]
    by_uid = {de.unique_id: de for de in entries}
    assert set(by_uid) == set(uids)
    pdf, txt = by_uid[uids[0]], by_uid[uids[1]]
    assert (pdf.mime_type, txt.mime_type) == ("application/pdf", "text/plain")
    assert pdf.title is not None and pdf.title.value == "Imaging report"
    assert pdf.class_code is not None and pdf.class_code.key == "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1"
    assert [c.code for c in pdf.confidentiality_codes] == ["N", "R"]
    assert [a.person for a in pdf.authors] == ["^Welby^Marcus^^^Dr^MD"]


def test_submit_failure_exits_1_with_the_error(server: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    code, out, err, uids = _submit(server, str(tmp_path / "a.txt"),
                                   "--patient", samples.new_patient_id())
    assert code == 1 and uids == []
    assert "XDSUnknownPatientId" in err and "Failure" in err


def test_submit_shows_progress_on_request_and_reports_an_unreachable_repository(
    tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = runner.invoke(app, ["submit", str(tmp_path / "a.txt"), "--patient",
                                 samples.new_patient_id(), "--progress",
                                 "--url", f"http://127.0.0.1:{free_port()}/xds/repository"])
    assert result.exit_code == 1
    assert "ITI-41 upload" in result.stderr and "failed" in result.stderr


def test_submit_refuses_a_malformed_code_or_patient(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    bad_code = runner.invoke(app, ["submit", str(tmp_path / "a.txt"), "--patient",
                                   samples.new_patient_id(), "--type-code", "just-a-code"])
    assert bad_code.exit_code == 2 and "code^^codingScheme" in bad_code.output
    bad_patient = runner.invoke(app, ["submit", str(tmp_path / "a.txt"), "--patient", "42"])
    assert bad_patient.exit_code == 2 and "id^^^&OID&ISO" in bad_patient.output


def test_retrieve_to_a_file_to_a_directory_and_partial_success(
    server: str, settings: Settings, new_patient: Callable[..., str], tmp_path: Path
) -> None:
    pid = new_patient()
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 a")
    (tmp_path / "b.txt").write_text("b")
    code, out, err, uids = _submit(server, str(tmp_path / "a.pdf"), str(tmp_path / "b.txt"),
                                   "--patient", pid)
    assert code == 0, out + err
    url = ["--url", server + "/xds/repository", "--repository", settings.repository_unique_id]

    one = runner.invoke(app, ["retrieve", "--document", uids[0], "--out",
                              str(tmp_path / "single.pdf"), *url])
    assert one.exit_code == 0, one.output
    assert (tmp_path / "single.pdf").read_bytes() == b"%PDF-1.4 a"
    assert f"{tmp_path / 'single.pdf'}  application/pdf  10 bytes" in one.stdout

    both = runner.invoke(app, ["retrieve", "--document", uids[0], "--document", uids[1],
                               "--out", str(tmp_path / "dir"), *url, "--progress"])
    assert both.exit_code == 0, both.output
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == sorted(
        [f"{uids[0]}.pdf", f"{uids[1]}.txt"])
    assert "ITI-43 download" in both.stderr

    partial = runner.invoke(app, ["retrieve", "--document", uids[1], "--document", "1.2.3.404",
                                  "--out", str(tmp_path / "partial") + "/", *url])
    assert partial.exit_code == 1
    assert (tmp_path / "partial" / f"{uids[1]}.txt").read_text() == "b"
    assert "XDSDocumentUniqueIdError" in partial.stderr and "1.2.3.404" in partial.stderr
    assert "PartialSuccess" in partial.stderr

    unknown_repo = runner.invoke(app, ["retrieve", "--document", uids[0], "--repository",
                                       "1.2.3.4.5", "--out", str(tmp_path / "none"),
                                       "--url", server + "/xds/repository"])
    assert unknown_repo.exit_code == 1 and "XDSUnknownRepositoryId" in unknown_repo.stderr


# -- memory ---------------------------------------------------------------------------------------

_MiB = 1 << 20


def _write_file(path: Path, mib: int) -> str:
    """``mib`` MiB of distinct pseudo-random chunks, written chunk by chunk; returns the SHA-256."""
    block = random.Random(7).randbytes(_MiB)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for i in range(mib):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


# Peak RSS is read from /proc (VmHWM of the process's own address space) on purpose: getrusage
# and wait4 report ru_maxrss, which Linux carries across fork+exec from the parent, so every
# child of this pytest process would report pytest's own (larger) peak instead of its own.
_DRIVER = """
import atexit, runpy, sys
def report():
    with open('/proc/self/status') as status:
        peak = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    sys.stderr.write(f'\\nVmHWM {peak}\\n')
atexit.register(report)
sys.argv = ['xds', *sys.argv[1:]]
runpy.run_module('xds', run_name='__main__')
"""


def _measured(*args: str) -> tuple[str, int]:
    """Run the ``xds`` CLI with ``args``; its output and its peak RSS in KiB."""
    result = subprocess.run([sys.executable, "-c", _DRIVER, *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    peak = re.findall(r"^VmHWM (\d+)$", result.stderr, re.M)
    assert peak, result.stderr
    return result.stdout, int(peak[-1])


def _round_trip(server: str, repository_id: str, pid: str, path: Path) -> tuple[Path, int, int]:
    url = server + "/xds/repository"
    text, submit_rss = _measured("submit", str(path), "--patient", pid, "--url", url, "--progress")
    uid = re.findall(r"^document uniqueId: (\S+)", text, re.M)[0]
    back = path.with_suffix(".back")
    _, retrieve_rss = _measured("retrieve", "--document", uid, "--repository", repository_id,
                                "--out", str(back), "--url", url, "--progress")
    return back, submit_rss, retrieve_rss


def test_client_memory_stays_flat_for_a_200_mb_document(
    backend: str, server: str, settings: Settings, new_patient: Callable[..., str],
    tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the client's memory does not depend on the registry's database")
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc (Linux)")
    started = time.monotonic()
    pid = new_patient()
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    _write_file(small, 1)
    big_sha256 = _write_file(big, 200)

    _, small_submit, small_retrieve = _round_trip(server, settings.repository_unique_id, pid, small)
    back, big_submit, big_retrieve = _round_trip(server, settings.repository_unique_id, pid, big)

    assert back.stat().st_size == 200 * _MiB
    with back.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == big_sha256
    # Peak RSS of the whole CLI process (interpreter, lxml, zeep, httpx: ~60 MiB) for a 1 MiB and
    # a 200 MiB document; holding the document would add 200 MiB, streaming adds a few buffers.
    print(f"\npeak RSS KiB: submit {small_submit} -> {big_submit}, "
          f"retrieve {small_retrieve} -> {big_retrieve}; {time.monotonic() - started:.1f}s")
    assert big_submit - small_submit < 20 * 1024
    assert big_retrieve - small_retrieve < 20 * 1024
