"""The published SOAP contract (wsdl/edoc-gateway.wsdl) against the third-party toolkits that read it.

Issue 8 findings 9 and 10: JAX-WS ``wsimport`` refused the WSDL (the parameter ``package`` is a Java keyword), and the
WSDL said nothing about authentication, so policy-aware toolkits (WCF, CXF, Metro) needed hand-written handlers.

* every published name is a legal identifier in Java, C#, PHP and JavaScript (no toolkit needed);
* the WSDL is valid WSDL 1.1 (xmlschema's WSDL 1.1 validator, which also checks the policy's place);
* the WS-Policy states what the guard enforces, and two third-party policy readers understand it: gSOAP ``wsdl2h``
  (knows WS-SecurityPolicy 1.2 assertions by section) and the JAX-WS RI's metro-policy (evaluates it at runtime);
* ``wsimport`` (Debian ``jaxws``) generates a client from the committed WSDL, ``javac`` compiles it, and that client
  — with Apache WSS4J (Debian ``libwss4j-java``) adding the UsernameToken — round-trips a package through a real
  gunicorn, as a Java integrator would run it (tests/java/EdocJaxwsClient.java).

The committed file is what the gateway serves (tests/test_web_soap.py compares them), so these tests read the file
and never import spyne. A toolkit that is not installed skips its test with the package to install; .ci/run
installs them all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import xmlschema
from lxml import etree
from web_fake_app import RECEIVER, SYSTEMS, gunicorn
from xmlschema.extras.wsdl import Wsdl11Document

ROOT = Path(__file__).resolve().parent.parent
COMMITTED_WSDL = ROOT / "wsdl" / "edoc-gateway.wsdl"
JAVA_CLIENT = Path(__file__).resolve().parent / "java" / "EdocJaxwsClient.java"
JAVA_LIBS = Path("/usr/share/java")
#: Debian jars of the JAX-WS RI runtime (its manifest names the rest), the WS-Security stack and their APIs.
JAVA_JARS = (
    "jaxws-rt.jar",
    "jaxws-api.jar",
    "jaxb-api.jar",
    "jws-api.jar",
    "javax.activation.jar",
    "javax.xml.soap-api.jar",
    "geronimo-annotation-1.3-spec.jar",
    "wss4j.jar",
    "xmlsec.jar",
    "commons-logging.jar",
    "slf4j-api.jar",
    "slf4j-nop.jar",
)

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSP = "http://www.w3.org/ns/ws-policy"
SP = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS = {"xs": XS, "wsdl": WSDL, "wsp": WSP, "sp": SP, "wsu": WSU}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Reserved words: Java SE 17 (keywords, literals, contextual var/yield/record), C# 12 keywords, JavaScript (ES2023
# reserved and strict-mode reserved words), PHP 8 keywords (case-insensitive) and the names PHP reserves for classes.
JAVA = _words(
    "abstract assert boolean break byte case catch char class const continue default do double else enum extends "
    "final finally float for goto if implements import instanceof int interface long native new package private "
    "protected public return short static strictfp super switch synchronized this throw throws transient try void "
    "volatile while true false null var yield record"
)
CSHARP = _words(
    "abstract as base bool break byte case catch char checked class const continue decimal default delegate do double "
    "else enum event explicit extern false finally fixed float for foreach goto if implicit in int interface internal "
    "is lock long namespace new null object operator out override params private protected public readonly ref "
    "return sbyte sealed short sizeof stackalloc static string struct switch this throw true try typeof uint ulong "
    "unchecked unsafe ushort using virtual void volatile while"
)
JAVASCRIPT = _words(
    "break case catch class const continue debugger default delete do else enum export extends false finally for "
    "function if import in instanceof new null return super switch this throw true try typeof var void while with "
    "yield let static implements interface package private protected public await arguments eval"
)
PHP = _words(
    "__halt_compiler abstract and array as break callable case catch class clone const continue declare default die "
    "do echo else elseif empty enddeclare endfor endforeach endif endswitch endwhile eval exit extends final finally "
    "fn for foreach function global goto if implements include include_once instanceof insteadof interface isset "
    "list match namespace new or print private protected public readonly require require_once return static switch "
    "throw trait try unset use var while xor yield"
)
PHP_CLASS_NAMES = {"int", "float", "bool", "string", "true", "false", "null", "void", "iterable", "object", "mixed"}
PHP_CLASS_NAMES |= {"never", "self", "parent", "static", "enum"}
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


RECEIVER_WSDL = ROOT / "wsdl" / "edoc-receiver.wsdl"


def _wsdl(path: Path = COMMITTED_WSDL) -> etree._Element:
    return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()


def _illegal(name: str, *, type_name: bool) -> list[str]:
    problems = [] if IDENTIFIER.match(name) else ["not an identifier"]
    problems += [lang for lang, words in (("Java", JAVA), ("C#", CSHARP), ("JavaScript", JAVASCRIPT)) if name in words]
    if name.lower() in PHP or (type_name and name.lower() in PHP_CLASS_NAMES):
        problems.append("PHP")
    return problems


@pytest.mark.parametrize("path", [COMMITTED_WSDL, RECEIVER_WSDL], ids=["gateway", "receiver"])
def test_every_published_name_is_a_legal_identifier_in_java_csharp_php_and_javascript(path: Path):
    """Both contracts: the gateway's, and the receiver contract a pushed-to agency implements (often in Java)."""
    root = _wsdl(path)
    names = {(el.get("name"), False) for el in root.iterfind(".//xs:element", NS)}  # parameters, results, fields
    names |= {(el.get("name"), True) for el in root.iterfind(".//xs:complexType", NS)}  # classes
    names |= {(el.get("name"), True) for el in root.iterfind(".//xs:simpleType", NS)}  # enums
    names |= {(op.get("name"), False) for op in root.iterfind("wsdl:portType/wsdl:operation", NS)}  # methods
    names |= {(e.get("value"), False) for e in root.iterfind(".//xs:enumeration", NS)}  # enum constants
    bad = {name: p for name, type_name in names if (p := _illegal(name, type_name=type_name))}
    assert bad == {}, f"names a client toolkit cannot turn into identifiers: {bad}"


def test_operations_take_and_answer_the_names_of_contract_1_1():
    root = _wsdl()

    def children(type_name: str) -> list[str]:
        return [e.get("name") for e in root.iterfind(f".//xs:complexType[@name='{type_name}']//xs:element", NS)]

    assert children("SendEdoc") == children("SendStatus") == ["edxmlPackage"]
    assert children("GetEdocResponse") == ["edxmlPackage"]
    assert children("GetEdoc") == ["deliveryId"]
    assert children("Acknowledge") == ["deliveryId", "status", "reason"]
    assert children("GetStatusHistory") == ["documentId", "docId"]  # docId: the gateway id from the Receipt
    (service_doc,) = root.iterfind("wsdl:service/wsdl:documentation", NS)
    assert "Changed in contract 1.1" in service_doc.text
    assert "deliveryId (was docId)" in service_doc.text and "edxmlPackage (was package)" in service_doc.text


def test_the_wsdl_is_valid_wsdl_1_1_with_the_policy_in_place():
    # xmlschema validates against the WSDL 1.1 schema it ships, then resolves messages, port types and bindings.
    document = Wsdl11Document(str(COMMITTED_WSDL), locations=None)
    assert set(document.services) == {"{urn:edoc-gateway:soap:1}EdocGateway"}
    assert len(document.bindings["{urn:edoc-gateway:soap:1}EdocGateway"].operations) == 7
    misplaced = _wsdl()
    misplaced.append(misplaced.find("wsp:Policy", NS))  # after wsdl:binding: not where WSDL 1.1 allows it
    with pytest.raises(xmlschema.XMLSchemaValidationError):  # so the validator does look at where the policy is
        Wsdl11Document(etree.tostring(misplaced).decode(), locations=None)


# -------------------------------------------------------------------------------------------- policy


def _policy() -> tuple[etree._Element, list[etree._Element]]:
    root = _wsdl()
    (reference,) = root.iterfind("wsdl:binding/wsp:PolicyReference", NS)
    policy_id = reference.get("URI").removeprefix("#")
    (policy,) = root.xpath("wsp:Policy[@wsu:Id=$id]", namespaces=NS, id=policy_id)
    return policy, policy.findall("wsp:ExactlyOne/wsp:All", NS)


def test_the_binding_policy_offers_digest_anywhere_or_password_text_inside_tls():
    policy, alternatives = _policy()
    assert len(alternatives) == 2
    digest, tls = alternatives
    # 1: a UsernameToken with a hashed password (PasswordDigest + Nonce + Created), no transport requirement.
    assert [etree.QName(a).localname for a in digest] == ["SupportingTokens"]
    (token,) = digest.iterfind("sp:SupportingTokens/wsp:Policy/sp:UsernameToken", NS)
    assert {etree.QName(a).localname for a in token.find("wsp:Policy", NS)} == {"HashPassword", "WssUsernameToken10"}
    # 2: HTTPS (TransportBinding/HttpsToken) and a UsernameToken whose password is sent as text.
    assert [etree.QName(a).localname for a in tls] == ["TransportBinding", "SignedSupportingTokens"]
    assert tls.find("sp:TransportBinding/wsp:Policy/sp:TransportToken/wsp:Policy/sp:HttpsToken", NS) is not None
    (token,) = tls.iterfind("sp:SignedSupportingTokens/wsp:Policy/sp:UsernameToken", NS)
    assert {etree.QName(a).localname for a in token.find("wsp:Policy", NS)} == {"WssUsernameToken10"}
    for token in policy.iterfind(".//sp:UsernameToken", NS):
        assert token.get(f"{{{SP}}}IncludeToken") == f"{SP}/IncludeToken/AlwaysToRecipient"
    # The guard checks the token's wsu:Created, not a message Timestamp; asking for one would make WCF and CXF
    # demand one in the gateway's answers too.
    assert policy.find(".//sp:IncludeTimestamp", NS) is None


def test_gsoap_wsdl2h_reads_the_ws_security_policy(tmp_path):
    if shutil.which("wsdl2h") is None:
        pytest.skip("gSOAP wsdl2h is not installed (Debian package gsoap; .ci/run installs it)")
    header = tmp_path / "edoc.h"
    run = subprocess.run(
        ["wsdl2h", "-o", str(header), str(COMMITTED_WSDL)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    text = header.read_text()
    section = text[text.index('@section EdocGateway_policy Policy of Binding "EdocGateway"') :]
    section = section[: section.index("@note")]
    # wsdl2h names each WS-SecurityPolicy 1.2 assertion it understood by its section in the specification; it lists
    # the two alternatives of the ExactlyOne one after the other.
    assert "- Exactly one of the following:" in section
    first, second = section.split("[7.3] Transport Binding requirements")
    assert "[8.1] Supporting Tokens requirements" in first
    assert "[5.4.1] WS-Security Username required" in first
    assert "UsernameTokenDigest" in first
    assert "[5.4.10] HTTPS required" in second
    assert "[8.2] Signed Supporting Tokens requirements" in second
    assert "[5.4.1] WS-Security Username required" in second
    assert 'this service requires importing "wsse.h"' in text  # the generated build pulls in WS-Security


# ------------------------------------------------------------------------------------------- JAX-WS


def _classpath(*extra: Path) -> str:
    return ":".join([*map(str, extra), *(str(JAVA_LIBS / jar) for jar in JAVA_JARS)])


def _wsimport(wsdl: Path, out: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["wsimport", "-Xnocompile", "-keep", "-s", str(out), "-d", str(out), "-p", "edoc.client", str(wsdl)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def jaxws_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wsimport on the committed WSDL, then javac on what it generated plus tests/java/EdocJaxwsClient.java."""
    if shutil.which("wsimport") is None or shutil.which("javac") is None:
        pytest.skip("JAX-WS wsimport or javac is not installed (Debian packages jaxws, default-jdk-headless)")
    missing = [jar for jar in JAVA_JARS if not (JAVA_LIBS / jar).exists()]
    if missing:
        pytest.skip(f"Java libraries missing from {JAVA_LIBS}: {missing} (Debian packages jaxws, libwss4j-java)")
    work = tmp_path_factory.mktemp("jaxws")
    generated = work / "generated"
    run = _wsimport(COMMITTED_WSDL, generated)
    assert run.returncode == 0 and "[ERROR]" not in run.stdout + run.stderr, run.stdout + run.stderr
    sources = sorted(str(p) for p in generated.rglob("*.java"))
    classes = work / "classes"
    compile_ = subprocess.run(
        ["javac", "-nowarn", "-d", str(classes), "-cp", _classpath(), *sources, str(JAVA_CLIENT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    return generated


def test_wsimport_generates_java_methods_with_the_published_parameter_names(jaxws_client):
    port = (jaxws_client / "edoc" / "client" / "EdocGateway.java").read_text()
    assert re.search(r"Receipt sendEdoc\(\s*@WebParam\(name = \"edxmlPackage\"[^)]*\)\s*byte\[\] edxmlPackage\)", port)
    assert re.search(r"byte\[\] getEdoc\(\s*@WebParam\(name = \"deliveryId\"[^)]*\)\s*String deliveryId\)", port)
    assert re.search(r"boolean acknowledge\(\s*@WebParam\(name = \"deliveryId\"[^)]*\)\s*String deliveryId,", port)


def test_wsimport_generates_the_receiver_contract(tmp_path):
    """An agency on the ``soap`` channel implements wsdl/edoc-receiver.wsdl: JAX-WS must generate it (its package
    parameter was ``package`` too before contract 1.1)."""
    if shutil.which("wsimport") is None:
        pytest.skip("JAX-WS wsimport is not installed (Debian package jaxws)")
    run = _wsimport(RECEIVER_WSDL, tmp_path / "receiver")
    assert run.returncode == 0, run.stdout + run.stderr
    port = next((tmp_path / "receiver").rglob("EdocReceiver.java")).read_text()
    assert re.search(r"@WebParam\(name = \"edxmlPackage\"[^)]*\)\s*byte\[\] edxmlPackage", port)


def test_wsimport_refuses_a_java_keyword_as_parameter_name(tmp_path):
    """The check above would have caught finding 9: the pre-1.1 name is refused exactly as reported."""
    if shutil.which("wsimport") is None:
        pytest.skip("JAX-WS wsimport is not installed (Debian package jaxws)")
    old = tmp_path / "old.wsdl"
    old.write_bytes(COMMITTED_WSDL.read_bytes().replace(b'name="edxmlPackage"', b'name="package"'))
    run = _wsimport(old, tmp_path / "generated")
    assert run.returncode != 0
    assert 'Local name of the wrapper child "package"' in run.stdout + run.stderr
    assert "is a java keyword" in run.stdout + run.stderr


def test_the_jaxws_client_round_trips_a_package_through_the_gateway(jaxws_client, tmp_path):
    classes = jaxws_client.parent / "classes"
    with gunicorn(tmp_path) as server:
        run = subprocess.run(
            [
                "java",
                "-cp",
                _classpath(classes),
                "EdocJaxwsClient",
                str(COMMITTED_WSDL),
                server.url + "/soap",
                "sys-sender",
                SYSTEMS["sys-sender"][0],
                "sys-receiver",
                SYSTEMS["sys-receiver"][0],
                RECEIVER,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    answers = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    assert answers["receipt.sha256"] == answers["sent.sha256"] == answers["fetched.sha256"]  # byte-exact both ways
    assert answers["pending.deliveryId"]
    assert answers["acknowledged"] == "true"
    assert answers["fault.code"] == "NOT_FOUND"  # the Fault arrives as GatewayError_Exception with its detail
    # The RI read the WSDL's policy when it built the client (metro-policy), and chose an alternative from it: it
    # knows the assertions but has no WS-Security runtime of its own (that is Metro WSIT), hence WSS4J in a handler.
    assert f"{{{SP}}}SupportingTokens" in run.stderr
