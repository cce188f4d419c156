"""wsdl/edoc-vn-legacy.wsdl: the WSDL of the legacy e-doc.vn profile (issue 13 item 4), which the Bkav axis never
published, against the spec's own examples and the toolkits integrators generate clients with.

* the WSDL is valid WSDL 1.1 (xmlschema's WSDL 1.1 validator), its two embedded schemas are valid XSD 1.0 (xmlschema
  and libxml2), and every published name is a legal identifier in Java, C#, PHP and JavaScript;
* every example message of the spec's §6 (tests/edocvn_vectors.py) carries, in its SOAP Header and Body, exactly the
  elements the WSDL's binding names for that operation, and each of them is valid against the WSDL's schema — so the
  WSDL describes what the real axis accepts and emits, including the UNqualified request wrappers (§2.3);
* mutations the axis refuses (a namespaced wrapper, a prefixed DocumentId, a missing StaffInfo…) are refused;
* zeep lists the eight operations with their SOAPActions, builds the requests in the spec's shapes and reads the
  spec's responses; JAX-WS ``wsimport`` generates a client that ``javac`` compiles; gSOAP ``wsdl2h``/``soapcpp2``
  read it and write the unqualified wrappers in their sample requests;
* that Java client (tests/java/EdocVnLegacyClient.java) runs against a stub answering the spec's examples: every
  request it puts on the wire — SwA for SendDocument — is in the shapes above, and it reads every answer. It needs
  two handlers, which wsdl/README.md explains: the JAX-WS RI writes no-namespace elements in the WSDL's target
  namespace (JSR 181 reads ``targetNamespace=""`` as "the default"), and it makes up the SwA part's Content-ID.

A toolkit that is not installed skips its test with the package to install; .ci/run installs them all.
"""

from __future__ import annotations

import copy
import email
import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import xmlschema
import zeep
from edocvn_vectors import VECTORS, envelope
from lxml import etree
from test_wsdl_contract import _illegal
from xmlschema.extras.wsdl import Wsdl11Document

from gateway.xmlcheck.safe import parse_bytes, parse_file

ROOT = Path(__file__).resolve().parent.parent
LEGACY_WSDL = ROOT / "wsdl" / "edoc-vn-legacy.wsdl"
EDXML = "http://www.e-doc.vn/Schema/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
XS = "http://www.w3.org/2001/XMLSchema"
NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    "mime": "http://schemas.xmlsoap.org/wsdl/mime/",
    "xs": XS,
}
OPERATIONS = (
    "CheckPermission",
    "GetOrganizations",
    "SendDocument",
    "GetPendingDocumentIds",
    "GetDocument",
    "ConfirmReceived",
    "UpdateTraces",
    "GetTraces",
)
#: Header blocks the spec's examples carry that the axis ignores (§6.2: "tolerated, unused"), so the WSDL leaves out.
IGNORED_HEADERS = {"{http://e-doc.vn/xsd}Token"}


@functools.cache
def _wsdl() -> etree._Element:
    return parse_file(LEGACY_WSDL).getroot()


def _qname(context: etree._Element, value: str) -> str:
    """A QName attribute value of the WSDL in Clark notation; unprefixed with no default namespace is no namespace."""
    prefix, _, local = value.rpartition(":")
    uri = context.nsmap.get(prefix or None)
    return f"{{{uri}}}{local}" if uri else local


@functools.cache
def _schemas() -> dict[str | None, etree._Element]:
    """The embedded xs:schema elements by target namespace (None: the no-namespace schema)."""
    return {s.get("targetNamespace"): s for s in _wsdl().iterfind("wsdl:types/xs:schema", NS)}


@functools.cache
def _validator(namespace: str | None) -> etree.XMLSchema:
    return etree.XMLSchema(etree.ElementTree(copy.deepcopy(_schemas()[namespace])))


def _validate(element: etree._Element) -> None:
    """libxml2 validation of one header block or body element against its global declaration in the WSDL."""
    namespace = etree.QName(element).namespace
    assert namespace in _schemas(), f"{element.tag}: no schema of the WSDL has its namespace"
    _validator(namespace).assertValid(etree.ElementTree(copy.deepcopy(element)))


def _message_parts(message: str) -> dict[str, str]:
    """Part name -> element QName (Clark) of a wsdl:message given by its QName."""
    (msg,) = _wsdl().xpath("wsdl:message[@name=$n]", namespaces=NS, n=message.rpartition(":")[2])
    return {p.get("name"): _qname(p, p.get("element")) for p in msg.iterfind("wsdl:part", NS) if p.get("element")}


def _expected(operation: str, direction: str) -> tuple[set[str], list[str]]:
    """What the binding puts in the SOAP Header (a set: header blocks come in any order) and the Body."""
    root = _wsdl()
    (abstract,) = root.xpath("wsdl:portType/wsdl:operation[@name=$n]", namespaces=NS, n=operation)
    parts = _message_parts(abstract.find(f"wsdl:{direction}", NS).get("message"))
    (bound,) = root.xpath(f"wsdl:binding/wsdl:operation[@name=$n]/wsdl:{direction}", namespaces=NS, n=operation)
    (body,) = bound.iterfind(".//soap:body", NS)
    body_parts = body.get("parts").split() if body.get("parts") is not None else list(parts)
    headers = {_message_parts(h.get("message"))[h.get("part")] for h in bound.iterfind(".//soap:header", NS)}
    return headers, [parts[name] for name in body_parts]


def _children(parent: etree._Element | None) -> list[etree._Element]:
    return [] if parent is None else [c for c in parent if isinstance(c.tag, str)]


def _check_envelope(
    data: bytes, operation: str, direction: str, expected: tuple[set[str], list[str]] | None = None
) -> None:
    """The envelope's Header and Body hold what the WSDL names for the operation (or ``expected``), each valid
    against its schema."""
    env = parse_bytes(data).getroot()
    assert env.tag == f"{{{SOAP11}}}Envelope"
    headers, body = expected or _expected(operation, direction)
    header = [h for h in _children(env.find(f"{{{SOAP11}}}Header")) if h.tag not in IGNORED_HEADERS]
    bodies = _children(env.find(f"{{{SOAP11}}}Body"))
    assert {h.tag for h in header} == headers
    assert [b.tag for b in bodies] == body
    for element in header + bodies:
        _validate(element)


# ---------------------------------------------------------------------------------------------- the document


def test_the_wsdl_is_valid_wsdl_1_1_with_the_eight_operations_over_soap_1_1():
    document = Wsdl11Document(str(LEGACY_WSDL), locations=None)  # WSDL 1.1 schema, then messages/ports/bindings
    assert set(document.services) == {"{urn:edoc-gateway:edoc-vn-legacy:1}EdocVnLegacy"}
    (binding,) = _wsdl().iterfind("wsdl:binding", NS)
    assert binding.find("soap:binding", NS).get("transport") == "http://schemas.xmlsoap.org/soap/http"
    assert binding.find("soap:binding", NS).get("style") == "document"
    actions = {
        op.get("name"): op.find("soap:operation", NS).get("soapAction") for op in binding.iterfind("wsdl:operation", NS)
    }
    assert actions == {name: name for name in OPERATIONS}  # §2.1: SOAPAction is the operation name, exactly
    assert {b.get("use") for b in binding.iterfind(".//soap:body", NS)} == {"literal"}
    assert _wsdl().find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}binding") is None  # §2.2: SOAP 1.1 only


def test_the_two_embedded_schemas_are_valid_xsd_1_0():
    assert set(_schemas()) == {EDXML, None}  # qualified e-doc.vn elements, and the unqualified wrappers (§2.3)
    for schema in _schemas().values():
        text = etree.tostring(schema, encoding="unicode")
        xmlschema.XMLSchema10.meta_schema.validate(text)
        xmlschema.XMLSchema10(text)
        etree.XMLSchema(etree.fromstring(text))
    assert _schemas()[EDXML].get("elementFormDefault") == "qualified"
    assert _schemas()[None].get("elementFormDefault") == "unqualified"


def test_every_published_name_is_a_legal_identifier_in_java_csharp_php_and_javascript():
    """Integrators generate clients: a Java keyword as a part or element name (``package``) stops wsimport."""
    root = _wsdl()
    names = {(el.get("name"), False) for el in root.iterfind(".//xs:element", NS)}
    names |= {(el.get("name"), True) for el in root.iterfind(".//xs:complexType", NS)}
    names |= {(op.get("name"), False) for op in root.iterfind("wsdl:portType/wsdl:operation", NS)}
    names |= {(part.get("name"), False) for part in root.iterfind("wsdl:message/wsdl:part", NS)}
    names |= {(a.get("name"), False) for a in root.iterfind(".//xs:attribute", NS)}
    bad = {name: p for name, type_name in names if (p := _illegal(name, type_name=type_name))}
    assert bad == {}, f"names a client toolkit cannot turn into identifiers: {bad}"


def test_the_request_wrappers_status_and_check_permission_are_declared_in_no_namespace():
    """§2.3 lookup style B: the axis finds these only unqualified; the WSDL names them so, every result qualified."""
    unqualified = {e.get("name") for e in _schemas()[None].iterfind("xs:element", NS)}
    assert unqualified == {
        "CheckPermission",
        "GetOrganizations",
        "GetPendingDocumentIdsRequest",
        "GetDocumentRequest",
        "ConfirmReceived",
        "GetTraces",
        "Status",
    }
    outputs = {op: _expected(op, "output") for op in OPERATIONS}
    assert all(q.startswith(f"{{{EDXML}}}") for headers, body in outputs.values() for q in [*headers, *body])


def test_attachments_are_described_as_soap_with_attachments_referenced_by_cid():
    """§7: SendDocument's request and GetDocument's response are multipart/related (WSDL 1.1 MIME binding), the
    envelope in the root part; the documentation says how a Manifest Reference names its part."""
    root = _wsdl()
    for operation, direction in (("SendDocument", "input"), ("GetDocument", "output")):
        (bound,) = root.xpath(f"wsdl:binding/wsdl:operation[@name=$n]/wsdl:{direction}", namespaces=NS, n=operation)
        first, second = bound.iterfind("mime:multipartRelated/mime:part", NS)
        assert first.find("soap:body", NS).get("parts") == "manifest"
        assert second.find("mime:content", NS).get("part") == "attachment"
        (doc,) = root.xpath("wsdl:portType/wsdl:operation[@name=$n]/wsdl:documentation", namespaces=NS, n=operation)
        assert '"cid:"' in doc.text and "Content-ID" in doc.text
    others = root.xpath(
        "wsdl:binding/wsdl:operation[not(@name='SendDocument' or @name='GetDocument')]//mime:*", namespaces=NS
    )
    assert others == []


# ------------------------------------------------------------------------------------- the spec's examples


@pytest.mark.parametrize("name", list(VECTORS))
def test_every_example_of_the_spec_matches_what_the_wsdl_names(name):
    vector = VECTORS[name]
    expected = None
    if name == "§6.5 GetDocument error response":
        # GetDocument answers a failure with a bare Report in the Body and no header blocks; WSDL 1.1 cannot give a
        # body two shapes, so the operation's documentation says so and the schema declares Report globally for it.
        (doc,) = _wsdl().xpath("wsdl:portType/wsdl:operation[@name='GetDocument']/wsdl:documentation", namespaces=NS)
        assert "a bare edXML:Report directly in the Body" in " ".join(doc.text.split())
        expected = (set(), [f"{{{EDXML}}}Report"])
    _check_envelope(envelope(vector.text), vector.operation, vector.direction, expected)


def _mutated(name: str, *replacements: tuple[str, str]) -> bytes:
    """The vector with each (old, new) replaced everywhere; every old text must occur, so a typo cannot pass."""
    text = VECTORS[name].text
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return envelope(text)


@pytest.mark.parametrize(
    ("name", "wrapper"),
    [
        ("§6.8 GetTraces request", "GetTraces"),  # §2.3: <GetTraces xmlns="http://www.e-doc.vn/Schema/"> is not found
        ("§6.4 GetPendingDocumentIds request", "GetPendingDocumentIdsRequest"),
        ("§6.7 UpdateTraces request", "Status"),  # §6.7: unqualified, unlike the Status GetTraces answers
        ("§6.1 CheckPermission request", "CheckPermission"),  # §6.1: an unqualified header block
    ],
)
def test_a_namespaced_wrapper_is_not_what_the_wsdl_names(name, wrapper):
    data = _mutated(name, (f"<{wrapper}>", f'<{wrapper} xmlns="{EDXML}">'))
    vector = VECTORS[name]
    with pytest.raises(AssertionError):
        _check_envelope(data, vector.operation, vector.direction)
    (element,) = parse_bytes(data).getroot().iterfind(f".//{{{EDXML}}}{wrapper}")
    with pytest.raises(etree.DocumentInvalid, match="No matching global declaration"):
        _validate(element)  # and the e-doc.vn schema does not declare it either


@pytest.mark.parametrize(
    ("name", "replacements"),
    [
        pytest.param(
            "§6.5 GetDocument request",
            [("<DocumentId>48213</DocumentId>", f'<e:DocumentId xmlns:e="{EDXML}">48213</e:DocumentId>')],
            id="§2.3 style D: DocumentId must be unprefixed",
        ),
        pytest.param(
            "§6.7 UpdateTraces request",
            [("<StatusCode>03</StatusCode>", "<StatusCode>03a</StatusCode>")],
            id="§8: a non-numeric StatusCode fails",
        ),
        pytest.param(
            "§6.3 SendDocument request",
            [("<edXML:KeyInfo>", "<KeyInfo>"), ("</edXML:KeyInfo>", "</KeyInfo>")],
            id="§2.3 style A: the SendDocument header content is qualified",
        ),
        pytest.param(
            "§6.3 SendDocument success response",
            [("<edXML:IsSuccess>true", "<edXML:IsSuccess>yes")],
            id="§4.2: IsSuccess is true or false",
        ),
    ],
)
def test_what_the_axis_cannot_take_is_refused(name, replacements):
    vector = VECTORS[name]
    with pytest.raises(etree.DocumentInvalid):
        _check_envelope(_mutated(name, *replacements), vector.operation, vector.direction)


# --------------------------------------------------------------------------------------------------- zeep

CREDENTIALS = {"OrganId": "000.00.13.H53", "Token": "RXhhbXBsZVRva2VuRm9yUmVjdjE="}


@functools.cache
def _zeep() -> zeep.Client:
    return zeep.Client(str(LEGACY_WSDL))


def _zeep_operations() -> dict[str, object]:
    (service,) = _zeep().wsdl.services.values()
    (port,) = service.ports.values()
    return port.binding._operations  # zeep has no public listing of a binding's operations


def test_zeep_lists_the_eight_operations_with_their_soap_actions():
    assert {name: op.soapaction for name, op in _zeep_operations().items()} == {name: name for name in OPERATIONS}


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("CheckPermission", {"_soapheaders": {"checkPermission": CREDENTIALS}}),
        ("GetOrganizations", CREDENTIALS),
        ("GetPendingDocumentIds", CREDENTIALS),
        ("GetDocument", {**CREDENTIALS, "DocumentId": 48213}),
        ("ConfirmReceived", {**CREDENTIALS, "DocumentId": 48213}),
        ("GetTraces", {**CREDENTIALS, "TimeStamp": "2024/05/01 00:00:00"}),
        (
            "UpdateTraces",
            {
                "From": {"OrganId": "000.00.13.H53"},
                "ResponseFor": {
                    "OrganId": "000.00.12.H53",
                    "Code": "125/SXD-VP",
                    "PromulgationDate": "2024/05/06",
                    "DocumentId": "000.00.12.H53,2024/05/06,125/SXD-VP",
                },
                "StatusCode": 3,
                "StaffInfo": {"Staff": "Lê Văn C"},
                "_soapheaders": {"signature": {"KeyInfo": CREDENTIALS}},
            },
        ),
    ],
)
def test_zeep_builds_each_request_in_the_shape_the_axis_reads(operation, kwargs):
    """A client generated from the WSDL writes the unqualified wrappers (§2.3) — the same check as the examples."""
    message = _zeep().create_message(_zeep().service, operation, **kwargs)
    _check_envelope(etree.tostring(message), operation, "input")
    assert message.find(f"{{{SOAP11}}}Body").nsmap.get(None) is None  # no default namespace around the wrapper


#: What zeep must read from each example answer. zeep hands back the Report itself for the wrappers whose only child
#: it is (CheckPermission, ConfirmReceived, UpdateTraces).
ZEEP_READS = {
    "§6.1 CheckPermission success response": lambda r: r.IsSuccess is True,
    "§6.2 GetOrganizations success response": lambda r: r.Organizations.Organization[0].OrganName == "Sở Xây dựng",
    "§6.3 SendDocument success response": lambda r: r.Report.IsSuccess is True and r.DocumentId == 48213,
    "§6.3 SendDocument error response": lambda r: (
        r.Report.IsSuccess is False and r.Report.ErrorList.Error[0].Code == "M.MessageHeader.DocumentType.Type"
    ),
    "§6.4 GetPendingDocumentIds success response": lambda r: r.DocumentIds.DocumentId == [48213, 48217],
    "§6.6 ConfirmReceived success response": lambda r: r.IsSuccess is True,
    "§6.7 UpdateTraces success response (shape of §6.6)": lambda r: r.IsSuccess is True,
    "§6.8 GetTraces success response": lambda r: (
        r.Traces.Status[0].StatusCode == 3 and r.Traces.Status[0].ResponseFor.Code == "125/SXD-VP"
    ),
    "§4.2 Report in GetOrganizationsResponse (§6.2 errors)": lambda r: (
        r.Organizations is None and r.Report.ErrorList.Error[0].Code == "M.OrganId"
    ),
}


@pytest.mark.parametrize(
    "name", [n for n, v in VECTORS.items() if v.direction == "output" and v.operation != "GetDocument"]
)
def test_zeep_reads_the_example_responses(name):
    """zeep decodes the spec's answers (pretty-printed, re-declared xmlns, a generated axis2ns7 prefix). GetDocument
    is left out: zeep does not bind a multipart/related answer."""
    vector = VECTORS[name]
    env = parse_bytes(envelope(vector.text)).getroot()
    etree.strip_tags(env, etree.Comment)  # the spec's "… one per registry row …" comment; zeep trips over comments
    result = _zeep_operations()[vector.operation].output.deserialize(env)
    assert ZEEP_READS[name](result), result


# ------------------------------------------------------------------------------------------------- JAX-WS


def _wsimport(wsdl: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["wsimport", *extra, "-Xnocompile", "-keep", "-s", str(out), "-d", str(out), "-p", "edoc.legacy", str(wsdl)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def _require(*tools: str) -> None:
    if missing := [t for t in tools if shutil.which(t) is None]:
        pytest.skip(f"{missing} not installed (Debian packages jaxws, default-jdk-headless, gsoap; .ci/run has them)")


JAXWS_JARS = ("jaxws-api.jar", "jaxb-api.jar", "jws-api.jar", "javax.activation.jar", "jaxws-rt.jar")


@pytest.fixture(scope="module")
def jaxws_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wsimport (with -XadditionalHeaders: CheckPermission's only input is a header block) and javac."""
    _require("wsimport", "javac")
    work = tmp_path_factory.mktemp("edocvn-jaxws")
    run = _wsimport(LEGACY_WSDL, work / "src", "-XadditionalHeaders")
    assert run.returncode == 0 and "[ERROR]" not in run.stdout + run.stderr, run.stdout + run.stderr
    assert "[WARNING]" not in run.stdout + run.stderr, run.stdout + run.stderr
    classpath = ":".join(f"/usr/share/java/{jar}" for jar in JAXWS_JARS)
    sources = sorted(str(p) for p in (work / "src").rglob("*.java"))
    javac = ["javac", "-nowarn", "-d", str(work / "classes"), "-cp", classpath, *sources]
    compiled = subprocess.run(javac, capture_output=True, text=True, timeout=300, check=False)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return work


@pytest.fixture(scope="module")
def jaxws_port(jaxws_build: Path) -> str:
    return (jaxws_build / "src" / "edoc" / "legacy" / "EdocVnLegacyPortType.java").read_text()


def test_wsimport_generates_a_compilable_client_with_the_wrappers_in_no_namespace(jaxws_port):
    def method(name: str) -> str:
        found = re.search(rf"public \w+ {name}\((.*?)\);", jaxws_port, re.S)
        assert found, name
        return found.group(1)

    assert 'name = "CheckPermission", targetNamespace = "", header = true' in method("checkPermission")
    for name, wrapper in (
        ("getOrganizations", "GetOrganizations"),
        ("getPendingDocumentIds", "GetPendingDocumentIdsRequest"),
        ("getDocument", "GetDocumentRequest"),
        ("confirmReceived", "ConfirmReceived"),
        ("getTraces", "GetTraces"),
        ("updateTraces", "Status"),
    ):
        assert f'name = "{wrapper}", targetNamespace = ""' in method(name)
    send = method("sendDocument")
    for block in ("MessageHeader", "TraceHeaderList", "ErrorList", "Signature"):
        assert f'name = "{block}", targetNamespace = "{EDXML}", header = true' in send
    assert "byte[] attachment" in send  # the SwA part
    for action in OPERATIONS:
        assert f'action = "{action}"' in jaxws_port


def test_wsimport_refuses_a_java_keyword_as_part_name(tmp_path):
    """The identifier check above guards against this: the GetTraces request part renamed ``package``."""
    _require("wsimport")
    bad = tmp_path / "bad.wsdl"
    text = LEGACY_WSDL.read_text(encoding="utf-8")
    bad.write_text(
        text.replace(
            '<wsdl:part name="request" element="GetTraces"/>', '<wsdl:part name="package" element="GetTraces"/>'
        )
    )
    assert bad.read_text() != text
    run = _wsimport(bad, tmp_path / "src")
    assert run.returncode != 0 and "java keyword" in run.stdout + run.stderr, run.stdout + run.stderr


# -------------------------------------------------------------------------------------------------- gSOAP


def test_gsoap_reads_the_wsdl_and_writes_the_unqualified_wrappers(tmp_path):
    """wsdl2h turns the WSDL into a header (MIME multipart/related for the two SwA operations); soapcpp2 compiles it
    and writes a sample request per operation, whose wrappers are in the shapes of §2.3."""
    _require("wsdl2h", "soapcpp2")
    header = tmp_path / "edocvn.h"
    run = subprocess.run(
        ["wsdl2h", "-o", str(header), str(LEGACY_WSDL)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    text = header.read_text()
    for operation in OPERATIONS:
        assert f"service method-input-action:\t{operation} {operation}" in text
    assert "method-input-mime-type:\tSendDocument" in text and "method-output-mime-type:\tGetDocument" in text
    out = tmp_path / "gen"
    out.mkdir()
    import_dir = "/usr/share/gsoap/import"
    run = subprocess.run(
        ["soapcpp2", "-C", "-L", "-d", str(out), f"-I{import_dir}", str(header)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for operation in OPERATIONS:
        env = parse_file(out / f"EdocVnLegacySoap.{operation}.req.xml").getroot()
        headers, body = _expected(operation, "input")
        assert {h.tag for h in _children(env.find(f"{{{SOAP11}}}Header"))} == headers
        assert [b.tag for b in _children(env.find(f"{{{SOAP11}}}Body"))] == body


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("§6.6 ConfirmReceived request", "//ConfirmReceived/DocumentId"),  # §6.6: the axis id is required
        ("§6.7 UpdateTraces request", "//Status/StaffInfo"),  # §6.7: "StaffInfo yes (absence → error)"
        ("§6.7 UpdateTraces request", "//Status/ResponseFor"),  # §6.7: required
        ("§6.3 SendDocument request", "//e:MessageHeader/e:Subject"),  # §6.3: each element must be present
        ("§6.3 SendDocument request", "//e:MessageHeader/e:To"),  # §6.3: ≥ 1 To
        ("§6.3 SendDocument request", "//e:TraceHeaderList/e:Business"),  # §6.3: one Business block
        ("§6.3 SendDocument request", "//e:Signature/e:KeyInfo/e:Token"),  # §3: OrganId and Token
        ("§6.1 CheckPermission success response", "//e:Report/e:ErrorList"),  # §4.2: ErrorList is always present
    ],
)
def test_a_required_element_left_out_is_refused(name, path):
    vector = VECTORS[name]
    env = parse_bytes(envelope(vector.text)).getroot()
    (element,) = env.xpath(path, namespaces={"e": EDXML})
    element.getparent().remove(element)
    with pytest.raises(etree.DocumentInvalid):
        _check_envelope(etree.tostring(env), vector.operation, vector.direction)


# ---------------------------------------------------------------------------- JAX-WS client on the wire

JAVA_CLIENT = Path(__file__).resolve().parent / "java" / "EdocVnLegacyClient.java"
#: What the stub answers per SOAPAction: the spec's example responses.
STUB_ANSWERS = {
    "CheckPermission": "§6.1 CheckPermission success response",
    "GetOrganizations": "§6.2 GetOrganizations success response",
    "SendDocument": "§6.3 SendDocument success response",
    "GetPendingDocumentIds": "§6.4 GetPendingDocumentIds success response",
    "ConfirmReceived": "§6.6 ConfirmReceived success response",
    "UpdateTraces": "§6.7 UpdateTraces success response (shape of §6.6)",
    "GetTraces": "§6.8 GetTraces success response",
}


class _Stub(http.server.BaseHTTPRequestHandler):
    """Records each request and answers the spec's example for its SOAPAction, as plain text/xml (§2.4)."""

    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        action = self.headers.get("SOAPAction", "").strip('"')  # §2.1: one pair of quotes is stripped
        self.seen.append((action, self.headers.get("Content-Type", ""), body))
        answer = envelope(VECTORS[STUB_ANSWERS[action]].text)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=UTF-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def _root_part(content_type: str, body: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The envelope and the attachments (Content-ID without brackets -> bytes) of a request, SwA or plain."""
    if not content_type.startswith("multipart/related"):
        return body, {}
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    root, *attachments = message.get_payload()
    return root.get_payload(decode=True), {a["Content-ID"].strip("<>"): a.get_payload(decode=True) for a in attachments}


@pytest.fixture(scope="module")
def jaxws_classes(jaxws_build: Path) -> Path:
    """The generated classes (jaxws_build compiled them) plus tests/java/EdocVnLegacyClient.java."""
    classes = jaxws_build / "classes"
    classpath = ":".join([str(classes), *(f"/usr/share/java/{jar}" for jar in JAXWS_JARS)])
    javac = ["javac", "-nowarn", "-encoding", "UTF-8", "-d", str(classes), "-cp", classpath, str(JAVA_CLIENT)]
    compiled = subprocess.run(javac, capture_output=True, text=True, timeout=300, check=False)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return classes


def test_a_jaxws_client_writes_what_the_axis_reads_and_reads_what_it_answers(jaxws_classes):
    _Stub.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        classpath = ":".join([str(jaxws_classes), *(f"/usr/share/java/{jar}" for jar in JAXWS_JARS)])
        url = f"http://127.0.0.1:{server.server_port}/legacy/edoc"
        argv = ["java", "-cp", classpath, "EdocVnLegacyClient", str(LEGACY_WSDL), url, "000.00.12.H53", "VG9rZW4="]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    answers = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    assert answers == {
        "checkPermission.isSuccess": "true",
        "getOrganizations.first": "Sở Xây dựng",
        "getPendingDocumentIds": "[48213, 48217]",
        "getTraces.statusCode": "3",
        "getTraces.responseFor.code": "125/SXD-VP",
        "confirmReceived.isSuccess": "true",
        "updateTraces.isSuccess": "true",
        "sendDocument.isSuccess": "true",
        "sendDocument.documentId": "48213",
    }
    operations = [action for action, _, _ in _Stub.seen]
    assert operations == [
        "CheckPermission",
        "GetOrganizations",
        "GetPendingDocumentIds",
        "GetTraces",
        "ConfirmReceived",
        "UpdateTraces",
        "SendDocument",
    ]
    for action, content_type, body in _Stub.seen:
        root, attachments = _root_part(content_type, body)
        _check_envelope(root, action, "input")  # the unqualified wrappers and header blocks, valid (§2.3)
        if action == "SendDocument":  # §2.4/§7.1: SwA, the part the Manifest names by cid:
            assert content_type.startswith("multipart/related") and 'type="text/xml"' in content_type
            assert attachments == {"att-1@qlvb.example": b"%PDF-1.4 demo"}
            assert b'href="cid:att-1@qlvb.example"' in root
