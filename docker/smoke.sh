#!/usr/bin/env bash
# Smoke test of the container stack of docker/compose.yaml, driven by the product's own CLI.
#
#   bash docker/smoke.sh            # build, start, test, then `docker compose down -v`
#   KEEP=1 bash docker/smoke.sh     # leave the stack and its volumes running afterwards
#
# Each step prints PASS or FAIL (a failed step skips the steps that need its result):
#   the stack comes up; GET /readyz answers 200; the listeners accept connections
#   (a) documents: xds patient add; xds submit (ITI-41); xds query find-documents (ITI-18)
#       finds it; xds retrieve (ITI-43); cmp of the retrieved bytes with the submitted ones
#   (b) images: xds pix feed (ITI-8 over MLLP to xds-listeners); C-STORE of a generated
#       three-image CT series to xds-listeners (pynetdicom, inside the xds image); xds publish
#       (RAD-68); xds imaging fetch (ITI-18, ITI-43, RAD-69): every image back, same pixels;
#       WADO-RS of the study from the host
#   the bytes are in the S3 bucket, each SeaweedFS volume in three copies; xds blobs verify
#   (when the command exists)
# The client commands run inside the xds container (docker compose exec), whose environment
# holds the stack's settings (XDS_DATABASE_URL, XDS_BLOB_URL, ...).
# Needs: Docker with the compose plugin and a running engine; curl (or python3) on the host.
# Knobs: KEEP=1; XDS_HTTP_PORT (the published HTTP port, as in compose.yaml); XDS_SMOKE_URL
# (default http://127.0.0.1:$XDS_HTTP_PORT).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
compose=(docker compose -f "$here/compose.yaml")
url=${XDS_SMOKE_URL:-http://127.0.0.1:${XDS_HTTP_PORT:-8080}}
passed=0
failed=0

if ! docker compose version >/dev/null 2>&1; then
    echo "FAIL  docker compose is not available (the Compose v2 plugin is needed)"
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "FAIL  no Docker engine answers (docker info)"
    exit 1
fi

work=$(mktemp -d)

cleanup() {
    local status=$?
    if ((failed > 0 || status != 0)); then
        echo "--- last log lines of the xds services ---"
        "${compose[@]}" logs --no-color --tail 60 migrate bucket xds xds-listeners 2>&1 |
            tail -n 240 || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "KEEP=1: the stack is still running; remove it with:" \
            "docker compose -f $here/compose.yaml down -v"
    else
        "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

pass() {
    printf 'PASS  %s\n' "$1"
    passed=$((passed + 1))
}
fail() {
    printf 'FAIL  %s\n' "$1"
    failed=$((failed + 1))
}

# check NAME COMMAND...: run COMMAND (output to a log); PASS, or FAIL with the log's tail.
# COMMAND runs in this shell, so functions may set variables for later steps. (set -e does not
# apply inside a condition: the functions below chain their commands with && / || return.)
check() {
    local name=$1
    shift
    if "$@" >"$work/step.log" 2>&1; then
        pass "$name"
        return 0
    fi
    fail "$name"
    tail -n 40 "$work/step.log" | sed 's/^/      /'
    return 1
}

# A command in the xds container; in_xds_stdin also hands it this script's stdin.
in_xds() { "${compose[@]}" exec -T xds "$@" </dev/null; }
in_xds_stdin() { "${compose[@]}" exec -T xds "$@"; }

http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 5 "$1"
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1"
    fi
}

# --- the stack ---------------------------------------------------------------------------------

start_stack() {
    echo "docker compose up --build --wait (the first run pulls images and builds xds: minutes)"
    if "${compose[@]}" up -d --build --wait --wait-timeout 600; then
        return 0
    fi
    # An older Compose may lack --wait-timeout, or count the finished one-shot services
    # (migrate, bucket) as failed under --wait. xds starts only once both have succeeded, so
    # a running xds is what counts.
    echo "'up --wait' failed: trying 'up -d --build', then checking that xds runs"
    "${compose[@]}" up -d --build || return 1
    "${compose[@]}" ps --status running --services | grep -qx xds
}

wait_ready() {
    local i
    for ((i = 0; i < 90; i++)); do
        if http_ok "$url/readyz"; then
            return 0
        fi
        sleep 2
    done
    echo "no 200 from $url/readyz within 180 s"
    return 1
}

wait_listeners() {
    local i cid health
    cid=$("${compose[@]}" ps -q xds-listeners) || return 1
    [[ -n $cid ]] || { echo "xds-listeners is not running"; return 1; }
    for ((i = 0; i < 60; i++)); do
        health=$(docker inspect -f '{{.State.Health.Status}}' "$cid") || return 1
        if [[ $health == healthy ]]; then
            return 0
        fi
        sleep 3
    done
    echo "xds-listeners health: $health"
    return 1
}

check "stack up (docker compose up --build --wait)" start_stack || exit 1
check "GET $url/readyz answers 200" wait_ready || exit 1
check "xds-listeners healthy (MLLP 2575 and DICOM 11112 accept)" wait_listeners || true

affinity=$(in_xds python -c 'from xds.config import Settings; print(Settings.from_env().affinity_domain)')
stamp="$(date +%s)$RANDOM"
doc_patient="SMOKE-D$stamp^^^&$affinity&ISO"
img_patient_id="SMOKE-I$stamp"
img_patient="$img_patient_id^^^&$affinity&ISO"
in_xds mkdir -p /tmp/smoke

# --- (a) a document: ITI-41, ITI-18, ITI-43 ------------------------------------------------------

doc_uid=""
submit_doc() {
    head -c 262144 /dev/urandom | base64 >"$work/report.txt" || return 1
    in_xds_stdin sh -c 'cat > /tmp/smoke/report.txt' <"$work/report.txt" || return 1
    if ! in_xds xds submit /tmp/smoke/report.txt --patient "$doc_patient" \
        --title "xds smoke test" >"$work/submit.out"; then
        cat "$work/submit.out"
        return 1
    fi
    cat "$work/submit.out"
    doc_uid=$(sed -n 's/^document uniqueId: \([^ ]*\).*/\1/p' "$work/submit.out")
    [[ -n $doc_uid ]]
}

query_doc() {
    in_xds xds query find-documents "$doc_patient" --xml >"$work/query.xml" || {
        cat "$work/query.xml"
        return 1
    }
    grep -F "\"$doc_uid\"" "$work/query.xml" || { echo "uniqueId $doc_uid not in the answer"; return 1; }
}

retrieve_doc() {
    in_xds xds retrieve --document "$doc_uid" --out /tmp/smoke/report-copy.txt &&
        in_xds cat /tmp/smoke/report-copy.txt >"$work/report-copy.txt"
}

part_a() {
    check "(a) xds patient add $doc_patient" in_xds xds patient add "$doc_patient" || return 0
    check "(a) ITI-41: xds submit" submit_doc || return 0
    check "(a) ITI-18: xds query find-documents finds $doc_uid" query_doc || true
    check "(a) ITI-43: xds retrieve --document $doc_uid" retrieve_doc || return 0
    check "(a) the retrieved document equals the submitted one (cmp)" \
        cmp "$work/report.txt" "$work/report-copy.txt" || true
}

# --- (b) images: MLLP, C-STORE, RAD-68, RAD-69 ---------------------------------------------------

cat >"$work/cstore.py" <<'PY'
"""C-STORE three generated CT images of one new study to the DICOM SCP of xds-listeners."""
import hashlib
import random
import sys
import time

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from xds.config import Settings

patient_id, host = sys.argv[1], sys.argv[2]
settings = Settings.from_env()
study, series = generate_uid(), generate_uid()


def image(number):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = patient_id
    ds.PatientName = "SMOKE^IMAGING"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = time.strftime("%Y%m%d")
    ds.StudyTime = time.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = "SMK" + study[-8:]
    ds.ReferringPhysicianName = ""
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 64
    ds.Columns = 64
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = random.Random(ds.SOPInstanceUID).randbytes(64 * 64 * 2)
    ds["PixelData"].VR = "OW"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


ae = AE(ae_title="XDS_SMOKE")
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
for _ in range(30):
    assoc = ae.associate(host, settings.dicom_port, ae_title=settings.dicom_ae_title)
    if assoc.is_established:
        break
    time.sleep(2)
else:
    sys.exit(f"no association with {settings.dicom_ae_title} at {host}:{settings.dicom_port}")
print("study", study)
try:
    for number in (1, 2, 3):
        ds = image(number)
        status = assoc.send_c_store(ds)
        code = getattr(status, "Status", None)
        if code != 0x0000:
            sys.exit(f"C-STORE of {ds.SOPInstanceUID}: status {code}")
        print("sop", f"{ds.SOPInstanceUID}:{hashlib.sha256(ds.PixelData).hexdigest()}")
finally:
    assoc.release()
PY

cat >"$work/compare.py" <<'PY'
"""The fetched Part-10 files of STUDY hold every SOP:SHA-256-of-PixelData given."""
import hashlib
import sys
from pathlib import Path

import pydicom

study = sys.argv[1]
expected = dict(arg.split(":") for arg in sys.argv[2:])
got = {}
for path in sorted(Path("/tmp/smoke/fetched", study).rglob("*.dcm")):
    ds = pydicom.dcmread(path)
    if "PixelData" in ds:
        got[str(ds.SOPInstanceUID)] = hashlib.sha256(ds.PixelData).hexdigest()
wrong = [sop for sop, digest in expected.items() if got.get(sop) != digest]
print(f"{len(expected) - len(wrong)} of {len(expected)} images fetched with their pixels")
sys.exit(f"missing or different: {wrong}" if wrong or not expected else 0)
PY

cat >"$work/objects.py" <<'PY'
"""Objects in the bucket; every SeaweedFS volume on three volume servers (replication 002)."""
import json
import os
import sys
import time
import urllib.request
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

blob_url = urlsplit(os.environ["XDS_BLOB_URL"])
endpoint = parse_qs(blob_url.query)["endpoint"][-1]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
count = s3.list_objects_v2(Bucket=blob_url.netloc, MaxKeys=1000).get("KeyCount", 0)
print(f"{count} objects in bucket {blob_url.netloc}")
if count < int(sys.argv[1]):
    sys.exit(f"expected at least {sys.argv[1]}")


def volumes(node, name, found):
    """Volume id -> the volume servers holding a copy, from the master's /vol/status."""
    if isinstance(node, dict):
        for key, value in node.items():
            volumes(value, key, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and "Id" in item:
                found[item["Id"]].add(name)
            else:
                volumes(item, name, found)
    return found


for _ in range(10):
    with urllib.request.urlopen("http://seaweed-master:9333/vol/status", timeout=10) as answer:
        copies = volumes(json.load(answer), "", defaultdict(set))
    short = {vid: sorted(servers) for vid, servers in copies.items() if len(servers) != 3}
    if copies and not short:
        print(f"{len(copies)} volumes, each on 3 volume servers")
        sys.exit(0)
    time.sleep(3)
sys.exit(f"volumes not on 3 servers: {short or 'no volumes'}")
PY

study_uid=""
sops=()
feed_patient() {
    local now
    now=$(date -u +%Y%m%d%H%M%S)
    printf '%s\n' \
        "MSH|^~\\&|XDS_SMOKE|HOSP|XDS_PIX|XDS|$now||ADT^A04^ADT_A01|SMOKE$stamp|P|2.3.1" \
        "EVN||$now" \
        "PID|||$img_patient||SMOKE^IMAGING||19700101|F" \
        "PV1||O" >"$work/adt.hl7" &&
        in_xds_stdin sh -c 'cat > /tmp/smoke/adt.hl7' <"$work/adt.hl7" &&
        in_xds xds pix feed /tmp/smoke/adt.hl7 --host xds-listeners --port 2575
}

cstore() {
    in_xds_stdin python - "$img_patient_id" xds-listeners <"$work/cstore.py" >"$work/cstore.out" || {
        cat "$work/cstore.out"
        return 1
    }
    cat "$work/cstore.out"
    study_uid=$(sed -n 's/^study //p' "$work/cstore.out")
    sops=()
    local sop
    while IFS= read -r sop; do # (no mapfile: macOS has bash 3.2)
        sops+=("$sop")
    done < <(sed -n 's/^sop //p' "$work/cstore.out")
    [[ -n $study_uid && ${#sops[@]} -eq 3 ]]
}

compare_images() {
    in_xds_stdin python - "$study_uid" "${sops[@]}" <"$work/compare.py"
}

wado_rs() {
    command -v curl >/dev/null 2>&1 || { echo "no curl on the host"; return 1; }
    curl -fsS --max-time 60 -o "$work/study.multipart" \
        -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \
        "$url/dicomweb/studies/$study_uid" &&
        (($(wc -c <"$work/study.multipart") > 3 * 64 * 64 * 2))
}

part_b() {
    check "(b) ITI-8: xds pix feed (ADT^A04) to xds-listeners:2575 answers AA" feed_patient || true
    check "(b) xds patient add $img_patient" in_xds xds patient add "$img_patient" || return 0
    check "(b) C-STORE of 3 CT images to xds-listeners:11112" cstore || return 0
    check "(b) RAD-68: xds publish --study $study_uid" in_xds xds publish --study "$study_uid" || return 0
    check "(b) RAD-69: xds imaging fetch --study $study_uid" \
        in_xds xds imaging fetch --patient "$img_patient" --study "$study_uid" \
        --out /tmp/smoke/fetched || return 0
    check "(b) the fetched images are the ones sent (SOP Instance UIDs, pixels)" compare_images || true
    check "(b) WADO-RS of the study from the host ($url/dicomweb)" wado_rs || true
}

part_a
part_b

# a document, three images, one KOS manifest
check "object store: the bytes are in bucket xds-blobs; every volume in 3 copies" \
    in_xds_stdin python - 5 <"$work/objects.py" || true
if in_xds xds blobs --help >/dev/null 2>&1; then
    check "xds blobs verify --sample 20" in_xds xds blobs verify --sample 20 || true
else
    echo "SKIP  xds blobs verify (no 'xds blobs' command in this image)"
fi

echo "smoke: $passed passed, $failed failed"
((failed == 0))
