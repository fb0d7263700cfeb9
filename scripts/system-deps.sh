#!/bin/sh
# System peers the test suite and benchmark use: dcmtk (independent DICOM peer),
# dicom3tools (dciodvfy validates what we emit), Orthanc + DICOMweb plugin (benchmark peer),
# Chromium (the browser the end-to-end tests and the viewer benchmark drive through playwright).
# Installed when running as root; otherwise the tests that need them skip with a reason
# (and fail in CI, where CI=true).
set -e
missing=""
[ -x /usr/bin/storescu ] || missing="$missing dcmtk"
[ -x /usr/bin/dciodvfy ] || missing="$missing dicom3tools"
[ -x /usr/sbin/Orthanc ] || [ -x /usr/bin/Orthanc ] || missing="$missing orthanc"
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing="$missing orthanc-dicomweb"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "note: missing system packages:$missing (not root: tests needing them will skip)"
fi
