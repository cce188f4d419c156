"""Hypothesis strategies that generate arbitrary edXML model values (for the round-trip properties)."""

from __future__ import annotations

from datetime import date, datetime

from _samples import real
from hypothesis import strategies as st

from gateway.demo.corpus_story import dummy_signature
from gateway.edxml import (
    Attachment,
    Bussiness,
    BussinessDocType,
    BussinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
    TraceHeaderList,
    read_bytes,
)

# Text that survives XML: no control characters (XML 1.0 forbids most, normalises \r), no surrogates,
# no non-characters; stripped, because absent/empty/whitespace-only all read back as "no value".
_chars = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))
text = st.text(_chars, min_size=1, max_size=40).map(str.strip).filter(bool)
opt_text = st.none() | text
req_text = st.just("") | text
token = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,19}", fullmatch=True)
organ_id = st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True) | token
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31))
stamps = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)

organizations = st.builds(
    Organization,
    organ_id=organ_id,
    organ_name=opt_text,
    organization_in_charge=opt_text,
    organ_add=opt_text,
    email=opt_text,
    telephone=opt_text,
    fax=opt_text,
    website=opt_text,
)
staff_infos = st.builds(
    StaffInfo,
    department=text,
    department_id=opt_text,
    staff=opt_text,
    staff_id=opt_text,
    mobile=opt_text,
    email=opt_text,
)
response_fors = st.builds(
    ResponseFor, organ_id=req_text, code=req_text, promulgation_date=st.none() | dates, document_id=text
)
message_headers = st.builds(
    MessageHeader,
    from_=organizations,
    to=st.lists(organizations, min_size=1, max_size=3).map(tuple),
    document_id=req_text,
    code=st.builds(Code, code_number=req_text, code_notation=req_text),
    promulgation_info=st.builds(PromulgationInfo, place=opt_text, promulgation_date=st.none() | dates),
    document_type=st.builds(DocumentType, type=req_text, type_detail=opt_text, type_name=req_text),
    subject=req_text,
    content=opt_text,
    signer_info=st.builds(SignerInfo, competence=opt_text, position=opt_text, full_name=opt_text),
    due_date=st.none() | dates,
    other_info=st.builds(
        OtherInfo,
        priority=st.sampled_from(Priority),
        sphere_of_promulgation=opt_text,
        typer_notation=opt_text,
        promulgation_amount=st.none() | st.integers(0, 65535),
        page_amount=st.none() | st.integers(0, 65535),
        direction=st.none() | st.booleans(),
        reply_fors=opt_text,
        reference_codes=opt_text,
        appendixes=st.lists(text, max_size=3).map(tuple),
    ),
    response_for=st.lists(response_fors, max_size=2).map(tuple),
    steering_type=st.none() | st.sampled_from(SteeringType),
    response_for_task=st.lists(text, max_size=2).map(tuple),
    application_type=opt_text,
    to_places=st.lists(text, max_size=3).map(tuple),
)
bussinesses = st.builds(
    Bussiness,
    bussiness_doc_type=st.sampled_from(BussinessDocType),
    document_id=opt_text,
    bussiness_doc_reason=opt_text,
    paper=st.none() | st.booleans(),
    staff_info=st.none() | staff_infos,
    bussiness_document_info=st.none()
    | st.builds(
        BussinessDocumentInfo,
        document_info=st.booleans(),
        document_receiver=st.booleans(),
        receivers=st.lists(
            st.builds(Receiver, organ_id=organ_id, receiver_type=st.sampled_from(ReceiverType)), max_size=3
        ).map(tuple),
    ),
    replacement_info_list=st.lists(
        st.builds(ReplacementInfo, document_id=req_text, organ_ids=st.lists(organ_id, max_size=3).map(tuple)),
        max_size=2,
    ).map(tuple),
)
trace_header_lists = st.builds(
    TraceHeaderList,
    trace_headers=st.lists(st.builds(TraceHeader, organ_id=organ_id, timestamp=st.none() | stamps), max_size=3).map(
        tuple
    ),
    bussiness=st.none() | bussinesses,
    id=st.none() | token,
    version=st.none() | token,
)


@st.composite
def _files(draw):
    cids = draw(st.lists(token, max_size=3, unique=True))
    refs, atts = [], []
    for cid in cids:
        refs.append(
            ManifestReference(
                content_id=cid, content_type=draw(opt_text), description=draw(opt_text), attachment_name=draw(opt_text)
            )
        )
        atts.append(
            Attachment(
                content_id=cid,
                attachment_name=draw(opt_text),
                description=draw(opt_text),
                content_type=draw(opt_text),
                data=draw(st.binary(max_size=300)),
                format=draw(opt_text),
                field_name=draw(opt_text),
                mime_type=draw(opt_text),
            )
        )
    return tuple(refs), tuple(atts)


#: The dummy placeholder signature as our corpus writes it, and as the real samples carry it (when present).
_legacy_signatures = [
    dummy_signature(),
    *([read_bytes(real().read("edoc_new")).signature] if real() is not None else []),
]


@st.composite
def edoc_packages(draw):
    refs, atts = draw(_files())
    return EdocPackage(
        message_header=draw(message_headers),
        trace_header_list=draw(trace_header_lists),
        signature=draw(st.sampled_from([None, *_legacy_signatures])),
        manifest_version=draw(st.sampled_from([None, "1.0"])),
        references=refs,
        attachments=atts,
    )


status_packages = st.builds(
    StatusPackage,
    from_=organizations,
    response_for=st.builds(
        ResponseFor, organ_id=req_text, code=req_text, promulgation_date=st.none() | dates, document_id=req_text
    ),
    status_code=st.sampled_from(StatusCode),
    timestamp=st.none() | stamps,
    staff_info=st.none() | staff_infos,
    description=opt_text,
)

packages = edoc_packages() | status_packages
