"""STOW-RS to the PACS with dicomweb-client: one instance per request, so each gets its own status, and every
failure classified into a reason a person can act on (refused, conflict, server error, unreachable, timeout).

Blocking (HTTP): the outbox calls it on its own worker thread. It does not retry: the outbox does, durably, with
backoff, so a retry survives a restart and never holds a thread asleep.
"""

from __future__ import annotations

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from telehealth.dicom.records import FailureKind, SendFailure

# PS3.18 / PS3.4 failure reasons a STOW-RS response may carry for an instance (Failure Reason, 0008,1197).
_FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0111: "duplicate SOP instance",
    0x0117: "invalid SOP instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorised",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "referenced transfer syntax not supported",
}
_BODY_CHARS = 200


def _body_text(response: requests.Response | None) -> str:
    """What the PACS said, short: the Failure Reason of a DICOM JSON answer, else the start of the body."""
    if response is None:
        return ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = _dicom_json_failure_code(payload)
        if code is not None:
            return f": 0x{code:04X} {_FAILURE_REASONS.get(code, 'unknown reason')}"
        if "00081198" in payload or "00081199" in payload:
            return ": no failure reason given"
        message = payload.get("Message")
        if isinstance(message, str):
            return f": {message[:_BODY_CHARS]}"
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, ValueError):
        return ""
    return f": {text[:_BODY_CHARS]}" if text else ""


def _dicom_json_failure_code(payload: dict[str, object]) -> int | None:
    """Failure Reason (0008,1197) of the first item of Failed SOP Sequence (0008,1198) in a DICOM JSON answer."""
    failed = payload.get("00081198")
    items = failed.get("Value") if isinstance(failed, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return None
    reason = items[0].get("00081197")
    values = reason.get("Value") if isinstance(reason, dict) else None
    if isinstance(values, list) and values and isinstance(values[0], int):
        return values[0]
    return None


def classify_http(status: int, body: str) -> SendFailure:
    if status == 409:
        return SendFailure(
            FailureKind.conflict, f"the PACS refused the instance as a conflict (HTTP 409){body}", status
        )
    if 400 <= status < 500:
        return SendFailure(FailureKind.refused, f"the PACS refused the request (HTTP {status}){body}", status)
    return SendFailure(FailureKind.server_error, f"the PACS failed (HTTP {status}){body}", status)


def _failed_sops(response: Dataset) -> SendFailure | None:
    """A 200 (or 202) whose Failed SOP Sequence names the instance: Orthanc and others report refusals that way."""
    failed = response.get("FailedSOPSequence")
    if not failed:
        return None
    code = failed[0].get("FailureReason")
    meaning = _FAILURE_REASONS.get(int(code), "unknown reason") if code is not None else "no reason given"
    shown = f"0x{int(code):04X} " if code is not None else ""
    return SendFailure(FailureKind.refused, f"the PACS refused the instance: {shown}{meaning}".strip())


class StowSender:
    """Sends one instance to `url` (the DICOMweb base, e.g. http://pacs:8042/dicom-web)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def send(self, dataset: Dataset, study_uid: str | None = None) -> SendFailure | None:
        """None when the PACS stored it; otherwise why not. The request names the study (POST /studies/{uid}),
        the dataset's own unless `study_uid` says otherwise, so a PACS can check the instance belongs there."""
        with requests.Session() as session:
            client = DICOMwebClient(self.url, session=session, timeout=(self.timeout_s, self.timeout_s))
            client.set_http_retry_params(retry=False)
            try:
                response = client.store_instances([dataset], study_uid or str(dataset.StudyInstanceUID))
            except requests.exceptions.ConnectTimeout:
                return SendFailure(
                    FailureKind.timeout, f"no connection to the PACS at {self.url} within {self.timeout_s:g} s"
                )
            except requests.exceptions.ReadTimeout:
                return SendFailure(
                    FailureKind.timeout, f"the PACS at {self.url} did not answer within {self.timeout_s:g} s"
                )
            except requests.exceptions.ConnectionError as exc:
                return SendFailure(FailureKind.unreachable, f"cannot reach the PACS at {self.url}: {_root_cause(exc)}")
            except requests.exceptions.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                return classify_http(status, _body_text(exc.response))
            except requests.exceptions.RequestException as exc:
                return SendFailure(FailureKind.unreachable, f"request to the PACS failed: {type(exc).__name__}")
        return _failed_sops(response)


def _root_cause(exc: BaseException) -> str:
    """The innermost error's words (e.g. "[Errno 111] Connection refused"), not urllib3's nested repr."""
    seen = exc
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    for arg in getattr(exc, "args", ()):
        reason = getattr(arg, "reason", None)
        if reason is not None:
            seen = reason
    text = str(seen)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text[:_BODY_CHARS] or type(seen).__name__
