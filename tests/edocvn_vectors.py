"""The example messages of the e-doc.vn wire spec (/work/shared/spec/legacy-edoc-vn.md §6), quoted as test vectors.

Each vector is the SOAP envelope of one example, copied from the section named in its key, with the MIME framing
(§2.4) left out where the spec shows it (the envelope is the root part). Examples the spec shows as a bare
``<soapenv:Body>`` fragment are kept as such; :func:`envelope` puts them in a SOAP 1.1 envelope. The spec composed
the examples from the Bkav axis's parsing and emitting code, so they are the shapes the real axis accepts and emits.

Kept in a module of their own so the WSDL tests (tests/test_edocvn_wsdl.py) and, later, the edge and adapter tests
read the same text.
"""

# ruff: noqa: E501 -- the vectors quote the spec verbatim, long lines included

from __future__ import annotations

from typing import NamedTuple

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


class Vector(NamedTuple):
    """One example: the operation it belongs to, ``input`` or ``output``, and its text."""

    operation: str
    direction: str
    text: str


def envelope(text: str) -> bytes:
    """The vector as a whole envelope: a ``<soapenv:Body>`` fragment is wrapped in ``soapenv:Envelope``."""
    if text.lstrip().startswith("<soapenv:Body>"):
        text = f'<soapenv:Envelope xmlns:soapenv="{SOAP11}">\n{text}\n</soapenv:Envelope>'
    return text.encode("utf-8")


VECTORS: dict[str, Vector] = {
    "§6.1 CheckPermission request": Vector(
        "CheckPermission",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header>
    <CheckPermission>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
    </CheckPermission>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body/>
</SOAP-ENV:Envelope>""",
    ),
    "§6.1 CheckPermission success response": Vector(
        "CheckPermission",
        "output",
        """\
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Header/>
  <soapenv:Body>
    <edXML:CheckPermissionResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
        <edXML:IsSuccess>true</edXML:IsSuccess>
        <edXML:ErrorList/>
      </edXML:Report>
    </edXML:CheckPermissionResponse>
  </soapenv:Body>
</soapenv:Envelope>""",
    ),
    "§6.2 GetOrganizations request": Vector(
        "GetOrganizations",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header>
    <Token xmlns="http://e-doc.vn/xsd">RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>   <!-- tolerated, unused -->
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <GetOrganizations>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <OrganId>000.00.13.H53</OrganId>
    </GetOrganizations>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.2 GetOrganizations success response": Vector(
        "GetOrganizations",
        "output",
        """\
<soapenv:Body>
  <edXML:GetOrganizationsResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Organizations xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Organization>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:OrganizationInCharge>UBND tỉnh</edXML:OrganizationInCharge>
        <edXML:OrganName>Sở Xây dựng</edXML:OrganName>
        <edXML:OrganAdd>12 Đường A, TP. B</edXML:OrganAdd>
        <edXML:Email>sxd@example.gov.vn</edXML:Email>
        <edXML:Telephone>0276000000</edXML:Telephone>
        <edXML:Fax></edXML:Fax>
        <edXML:Website></edXML:Website>
      </edXML:Organization>
      <!-- … one per registry row … -->
    </edXML:Organizations>
  </edXML:GetOrganizationsResponse>
</soapenv:Body>""",
    ),
    "§6.3 SendDocument request": Vector(
        "SendDocument",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
                   xmlns:edXML="http://www.e-doc.vn/Schema/">
  <SOAP-ENV:Header>
    <edXML:MessageHeader>
      <edXML:From>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:OrganName>Sở Xây dựng</edXML:OrganName>
        <edXML:OrganizationInCharge>UBND tỉnh</edXML:OrganizationInCharge>
        <edXML:OrganAdd>12 Đường A, TP. B</edXML:OrganAdd>
        <edXML:Email>sxd@example.gov.vn</edXML:Email>
        <edXML:Telephone>0276000000</edXML:Telephone>
        <edXML:Fax/>
        <edXML:Website/>
      </edXML:From>
      <edXML:To>
        <edXML:OrganId>000.00.13.H53</edXML:OrganId>
        <edXML:OrganName>Sở Thông tin và Truyền thông</edXML:OrganName>
        <edXML:OrganAdd>34 Đường C, TP. B</edXML:OrganAdd>
        <edXML:Email>stttt@example.gov.vn</edXML:Email>
        <edXML:Telephone/>
        <edXML:Fax/>
        <edXML:Website/>
      </edXML:To>
      <edXML:DocumentId>000.00.12.H53,2024/05/06,125/SXD-VP</edXML:DocumentId>
      <edXML:Code>
        <edXML:CodeNumber>125</edXML:CodeNumber>
        <edXML:CodeNotation>SXD-VP</edXML:CodeNotation>
      </edXML:Code>
      <edXML:PromulgationInfo>
        <edXML:Place>Tây Ninh</edXML:Place>
        <edXML:PromulgationDate>2024/05/06</edXML:PromulgationDate>
      </edXML:PromulgationInfo>
      <edXML:DocumentType>
        <edXML:Type>1</edXML:Type>
        <edXML:TypeName>Công văn</edXML:TypeName>
      </edXML:DocumentType>
      <edXML:Subject>V/v góp ý dự thảo quy chế</edXML:Subject>
      <edXML:Content/>
      <edXML:SignerInfo>
        <edXML:Competence>KT. GIÁM ĐỐC</edXML:Competence>
        <edXML:Position>Phó Giám đốc</edXML:Position>
        <edXML:FullName>Nguyễn Văn A</edXML:FullName>
      </edXML:SignerInfo>
      <edXML:DueDate>2024/05/20</edXML:DueDate>
      <edXML:ToPlaces>
        <edXML:Place>Như trên</edXML:Place>
      </edXML:ToPlaces>
      <edXML:OtherInfo>
        <edXML:Priority>0</edXML:Priority>
        <edXML:SphereOfPromulgation/>
        <edXML:TyperNotation>VP</edXML:TyperNotation>
        <edXML:PromulgationAmount>1</edXML:PromulgationAmount>
        <edXML:PageAmount>2</edXML:PageAmount>
        <edXML:Appendixes/>
      </edXML:OtherInfo>
      <edXML:SteeringType>0</edXML:SteeringType>
    </edXML:MessageHeader>
    <edXML:TraceHeaderList>
      <edXML:TraceHeader>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:Timestamp>2024/05/06 09:15:00</edXML:Timestamp>
      </edXML:TraceHeader>
      <edXML:Business>
        <edXML:BusinessDocType>0</edXML:BusinessDocType>
        <edXML:BusinessDocReason>Văn bản mới</edXML:BusinessDocReason>
        <edXML:Paper>0</edXML:Paper>
        <edXML:StaffInfo>
          <edXML:Department>Văn phòng</edXML:Department>
          <edXML:Staff>Trần Thị B</edXML:Staff>
          <edXML:Mobile>0900000000</edXML:Mobile>
          <edXML:Email>vanthu@example.gov.vn</edXML:Email>
        </edXML:StaffInfo>
      </edXML:Business>
    </edXML:TraceHeaderList>
    <edXML:ErrorList/>
    <edXML:Signature>
      <edXML:KeyInfo>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:Token>Qm9ndXNUb2tlbkV4YW1wbGUwMDE=</edXML:Token>
      </edXML:KeyInfo>
    </edXML:Signature>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <edXML:Manifest>
      <edXML:Reference href="cid:att-1@qlvb.example">
        <edXML:AttachmentName>125-SXD-VP.pdf</edXML:AttachmentName>
        <edXML:Description>Công văn 125</edXML:Description>
      </edXML:Reference>
    </edXML:Manifest>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.3 SendDocument success response": Vector(
        "SendDocument",
        "output",
        """\
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Header/>
  <soapenv:Body>
    <edXML:SendDocumentResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
        <edXML:IsSuccess>true</edXML:IsSuccess>
        <edXML:ErrorList/>
      </edXML:Report>
      <axis2ns7:DocumentId xmlns:axis2ns7="http://www.e-doc.vn/Schema/">48213</axis2ns7:DocumentId>
    </edXML:SendDocumentResponse>
  </soapenv:Body>
</soapenv:Envelope>""",
    ),
    "§6.3 SendDocument error response": Vector(
        "SendDocument",
        "output",
        """\
<soapenv:Body>
  <edXML:SendDocumentResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:IsSuccess>false</edXML:IsSuccess>
      <edXML:ErrorList>
        <edXML:Error>
          <edXML:Code>M.MessageHeader.DocumentType.Type</edXML:Code>
          <edXML:Description>Document Type value is only math '1' or '2' </edXML:Description>
        </edXML:Error>
      </edXML:ErrorList>
    </edXML:Report>
  </edXML:SendDocumentResponse>
</soapenv:Body>""",
    ),
    "§6.4 GetPendingDocumentIds request": Vector(
        "GetPendingDocumentIds",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetPendingDocumentIdsRequest>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
    </GetPendingDocumentIdsRequest>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.4 GetPendingDocumentIds success response": Vector(
        "GetPendingDocumentIds",
        "output",
        """\
<soapenv:Body>
  <edXML:GetPendingDocumentIdsResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:DocumentIds xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:DocumentId>48213</edXML:DocumentId>
      <edXML:DocumentId>48217</edXML:DocumentId>
    </edXML:DocumentIds>
  </edXML:GetPendingDocumentIdsResponse>
</soapenv:Body>""",
    ),
    "§6.5 GetDocument request": Vector(
        "GetDocument",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetDocumentRequest>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <DocumentId>48213</DocumentId>
    </GetDocumentRequest>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.5 GetDocument success response, database path": Vector(
        "GetDocument",
        "output",
        """\
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Header>
    <edXML:MessageHeader xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:From>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:OrganName>Sở Xây dựng</edXML:OrganName>
        <edXML:OrganInCharge>UBND tỉnh</edXML:OrganInCharge>
        <edXML:OrganAdd>12 Đường A, TP. B</edXML:OrganAdd>
        <edXML:Email>sxd@example.gov.vn</edXML:Email>
        <edXML:Telephone>0276000000</edXML:Telephone>
        <edXML:Fax/>
        <edXML:Website/>
      </edXML:From>
      <edXML:To>
        <edXML:OrganId>000.00.13.H53</edXML:OrganId>
        <edXML:OrganName>Sở Thông tin và Truyền thông</edXML:OrganName>
        <edXML:OrganAdd>34 Đường C, TP. B</edXML:OrganAdd>
        <edXML:Email>stttt@example.gov.vn</edXML:Email>
        <edXML:Telephone/>
        <edXML:Fax/>
        <edXML:Website/>
      </edXML:To>
      <edXML:DocumentId>48213</edXML:DocumentId>
      <edXML:Code>
        <edXML:CodeNumber>125</edXML:CodeNumber>
        <edXML:CodeNotation>SXD-VP</edXML:CodeNotation>
      </edXML:Code>
      <edXML:PromulgationInfo>
        <edXML:PromulgationDate>06/05/2024</edXML:PromulgationDate>
        <edXML:Place>Tây Ninh</edXML:Place>
      </edXML:PromulgationInfo>
      <edXML:DocumentType>
        <edXML:Type>1</edXML:Type>
        <edXML:TypeName>Công văn</edXML:TypeName>
      </edXML:DocumentType>
      <edXML:Subject>V/v góp ý dự thảo quy chế</edXML:Subject>
      <edXML:Content/>
      <edXML:SignerInfo>
        <edXML:FullName>Nguyễn Văn A</edXML:FullName>
        <edXML:Position>Phó Giám đốc</edXML:Position>
        <edXML:Competence>KT. GIÁM ĐỐC</edXML:Competence>
      </edXML:SignerInfo>
      <edXML:DueDate>2024/05/20</edXML:DueDate>
      <edXML:ToPlaces>
        <edXML:Place>Như trên</edXML:Place>
      </edXML:ToPlaces>
      <edXML:OtherInfo>
        <edXML:Priority>0</edXML:Priority>
        <edXML:SphereOfPromulgation/>
        <edXML:TyperNotation>VP</edXML:TyperNotation>
        <edXML:PromulgationAmount>1</edXML:PromulgationAmount>
        <edXML:PageAmount>2</edXML:PageAmount>
      </edXML:OtherInfo>
      <edXML:SteeringType>0</edXML:SteeringType>
    </edXML:MessageHeader>
    <edXML:TraceHeaderList xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:TraceHeader>
        <edXML:OrganId>000.00.12.H53</edXML:OrganId>
        <edXML:Timestamp>06/05/2024 09:15:00</edXML:Timestamp>
      </edXML:TraceHeader>
      <edXML:Business>
        <edXML:BusinessDocType>0</edXML:BusinessDocType>
        <edXML:BusinessDocReason>Văn bản mới</edXML:BusinessDocReason>
        <edXML:Paper>0</edXML:Paper>
        <edXML:StaffInfo>
          <edXML:Department>Văn phòng</edXML:Department>
          <edXML:Staff>Trần Thị B</edXML:Staff>
          <edXML:Mobile>0900000000</edXML:Mobile>
          <edXML:Email>vanthu@example.gov.vn</edXML:Email>
        </edXML:StaffInfo>
      </edXML:Business>
    </edXML:TraceHeaderList>
  </soapenv:Header>
  <soapenv:Body>
    <edXML:Manifest xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink"
                       xlink:href="cid:5f0c2d9e-8a41-4c57-9a3e-0d6b1e7f2a10"
                       xlink:type="application/pdf">
        <edXML:AttachmentName>125-SXD-VP.pdf</edXML:AttachmentName>
        <edXML:Description>125-SXD-VP.pdf</edXML:Description>
      </edXML:Reference>
    </edXML:Manifest>
  </soapenv:Body>
</soapenv:Envelope>""",
    ),
    "§6.5 GetDocument error response": Vector(
        "GetDocument",
        "output",
        """\
<soapenv:Body>
  <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:IsSuccess>false</edXML:IsSuccess>
    <edXML:ErrorList>
      <edXML:Error>
        <edXML:Code>M.GetDocumentCheckAllow</edXML:Code>
        <edXML:Description>Not find document pending in cache, database docId 48299 organId 000.00.13.H53</edXML:Description>
      </edXML:Error>
    </edXML:ErrorList>
  </edXML:Report>
</soapenv:Body>""",
    ),
    "§6.6 ConfirmReceived request": Vector(
        "ConfirmReceived",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <ConfirmReceived>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <DocumentId>48213</DocumentId>
    </ConfirmReceived>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.6 ConfirmReceived success response": Vector(
        "ConfirmReceived",
        "output",
        """\
<soapenv:Body>
  <edXML:ConfirmReceivedResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:IsSuccess>true</edXML:IsSuccess>
      <edXML:ErrorList/>
    </edXML:Report>
  </edXML:ConfirmReceivedResponse>
</soapenv:Body>""",
    ),
    "§6.7 UpdateTraces request": Vector(
        "UpdateTraces",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
                   xmlns:edXML="http://www.e-doc.vn/Schema/">
  <SOAP-ENV:Header>
    <edXML:Signature>
      <edXML:KeyInfo>
        <edXML:OrganId>000.00.13.H53</edXML:OrganId>
        <edXML:Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</edXML:Token>
      </edXML:KeyInfo>
    </edXML:Signature>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <Status>
      <From>
        <OrganId>000.00.13.H53</OrganId>
        <OrganName>Sở Thông tin và Truyền thông</OrganName>
      </From>
      <ResponseFor>
        <OrganId>000.00.12.H53</OrganId>
        <Code>125/SXD-VP</Code>
        <PromulgationDate>2024/05/06</PromulgationDate>
        <DocumentId>000.00.12.H53,2024/05/06,125/SXD-VP</DocumentId>
      </ResponseFor>
      <StatusCode>03</StatusCode>
      <Description>Văn thư: đã tiếp nhận, vào sổ văn bản đến</Description>
      <Timestamp>2024/05/06 14:02:10</Timestamp>
      <StaffInfo>
        <Department>Văn phòng Sở</Department>
        <Staff>Lê Văn C</Staff>
      </StaffInfo>
    </Status>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    # §6.7 gives the success response only as "edXML:UpdateTracesResponse/edXML:Report{true, ∅} (shape as §6.6)":
    # this is that shape with the wrapper renamed, nothing else.
    "§6.7 UpdateTraces success response (shape of §6.6)": Vector(
        "UpdateTraces",
        "output",
        """\
<soapenv:Body>
  <edXML:UpdateTracesResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:IsSuccess>true</edXML:IsSuccess>
      <edXML:ErrorList/>
    </edXML:Report>
  </edXML:UpdateTracesResponse>
</soapenv:Body>""",
    ),
    "§6.8 GetTraces request": Vector(
        "GetTraces",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetTraces>
      <OrganId>000.00.12.H53</OrganId>
      <Token>Qm9ndXNUb2tlbkV4YW1wbGUwMDE=</Token>
      <!-- optional: <TimeStamp>2024/05/01 00:00:00</TimeStamp> -->
    </GetTraces>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    # The same request with the optional element the §6.8 example shows in its comment.
    "§6.8 GetTraces request with TimeStamp (from the example's comment)": Vector(
        "GetTraces",
        "input",
        """\
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetTraces>
      <OrganId>000.00.12.H53</OrganId>
      <Token>Qm9ndXNUb2tlbkV4YW1wbGUwMDE=</Token>
      <TimeStamp>2024/05/01 00:00:00</TimeStamp>
    </GetTraces>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""",
    ),
    "§6.8 GetTraces success response": Vector(
        "GetTraces",
        "output",
        """\
<soapenv:Body>
  <edXML:GetTracesResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Traces xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Status>
        <edXML:From>
          <edXML:OrganId>000.00.13.H53</edXML:OrganId>
          <edXML:OrganName>Sở Thông tin và Truyền thông</edXML:OrganName>
        </edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>000.00.12.H53</edXML:OrganId>
          <edXML:Code>125/SXD-VP</edXML:Code>
          <edXML:PromulgationDate>2024/05/06 00:00:00</edXML:PromulgationDate>
          <edXML:DocumentId>000.00.12.H53,2024/05/06,125/SXD-VP</edXML:DocumentId>
        </edXML:ResponseFor>
        <edXML:StaffInfo>
          <edXML:Department>Văn phòng Sở</edXML:Department>
          <edXML:Staff>Lê Văn C</edXML:Staff>
        </edXML:StaffInfo>
        <edXML:StatusCode>3</edXML:StatusCode>
        <edXML:Description>Văn thư: đã tiếp nhận, vào sổ văn bản đến</edXML:Description>
        <edXML:Timestamp>2024/05/06 14:02:10</edXML:Timestamp>
      </edXML:Status>
    </edXML:Traces>
  </edXML:GetTracesResponse>
</soapenv:Body>""",
    ),
    # §4.2: the Report every *Response wrapper holds on failure; §3/§6.2: a wrong token gives IsSuccess=false with an
    # empty ErrorList, inside the operation's wrapper. The Report is §4.2's text; the wrapper is §6.2's.
    "§4.2 Report in GetOrganizationsResponse (§6.2 errors)": Vector(
        "GetOrganizations",
        "output",
        """\
<soapenv:Body>
  <edXML:GetOrganizationsResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
<edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:IsSuccess>false</edXML:IsSuccess>
    <edXML:ErrorList>
        <edXML:Error>
            <edXML:Code>M.OrganId</edXML:Code>
            <edXML:Description>OrganId is required.</edXML:Description>
        </edXML:Error>
    </edXML:ErrorList>
</edXML:Report>
  </edXML:GetOrganizationsResponse>
</soapenv:Body>""",
    ),
}
