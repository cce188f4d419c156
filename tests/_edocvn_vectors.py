# ruff: noqa: E501  (the spec's lines, quoted verbatim)
"""Test vectors quoted verbatim from /work/shared/spec/legacy-edoc-vn.md (the section is named on each).

The spec's examples were composed from the Bkav source; ids and tokens are invented there."""

from typing import Final

#: §6.1 request
CHECK_PERMISSION_HTTP: Final = """POST /services/EdocProxy HTTP/1.1
SOAPAction: CheckPermission
Content-Type: multipart/related; type="text/xml"; boundary="b-cp-01"; start="<root-cp>"

--b-cp-01
Content-Type: text/xml; charset=utf-8
Content-Transfer-Encoding: 8bit
Content-ID: <root-cp>

<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header>
    <CheckPermission>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
    </CheckPermission>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body/>
</SOAP-ENV:Envelope>
--b-cp-01--
"""

#: §6.1 success response
CHECK_PERMISSION_OK: Final = """<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Header/>
  <soapenv:Body>
    <edXML:CheckPermissionResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
        <edXML:IsSuccess>true</edXML:IsSuccess>
        <edXML:ErrorList/>
      </edXML:Report>
    </edXML:CheckPermissionResponse>
  </soapenv:Body>
</soapenv:Envelope>
"""

#: §6.2 request
GET_ORGANIZATIONS_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header>
    <Token xmlns="http://e-doc.vn/xsd">RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>   <!-- tolerated, unused -->
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <GetOrganizations>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <OrganId>000.00.13.H53</OrganId>
    </GetOrganizations>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

#: §6.2 success response
GET_ORGANIZATIONS_BODY: Final = """<soapenv:Body>
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
</soapenv:Body>
"""

#: §6.3 request
SEND_DOCUMENT_HTTP: Final = """POST /services/EdocProxy HTTP/1.1
SOAPAction: SendDocument
Content-Type: multipart/related; type="text/xml"; boundary="b-sd-7f2a"; start="<env.sd@qlvb.example>"

--b-sd-7f2a
Content-Type: text/xml; charset=utf-8
Content-Transfer-Encoding: 8bit
Content-ID: <env.sd@qlvb.example>

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
</SOAP-ENV:Envelope>
--b-sd-7f2a
Content-Type: application/pdf
Content-Transfer-Encoding: binary
Content-ID: <att-1@qlvb.example>

%PDF-1.4 … (raw file bytes) …
--b-sd-7f2a--
"""

#: §6.3 success response
SEND_DOCUMENT_OK: Final = """<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
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
</soapenv:Envelope>
"""

#: §6.3 error response
SEND_DOCUMENT_ERROR_BODY: Final = """<soapenv:Body>
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
</soapenv:Body>
"""

#: §6.4 request
GET_PENDING_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetPendingDocumentIdsRequest>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
    </GetPendingDocumentIdsRequest>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

#: §6.4 success response
GET_PENDING_BODY: Final = """<soapenv:Body>
  <edXML:GetPendingDocumentIdsResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:DocumentIds xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:DocumentId>48213</edXML:DocumentId>
      <edXML:DocumentId>48217</edXML:DocumentId>
    </edXML:DocumentIds>
  </edXML:GetPendingDocumentIdsResponse>
</soapenv:Body>
"""

#: §6.5 request
GET_DOCUMENT_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetDocumentRequest>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <DocumentId>48213</DocumentId>
    </GetDocumentRequest>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

#: §6.5 success response, database path
GET_DOCUMENT_HTTP: Final = """HTTP/1.1 200 OK
Content-Type: multipart/related; boundary=MIMEBoundary_3b9e; type="text/xml"; start="<0.root-gd@apache.org>"

--MIMEBoundary_3b9e
Content-Type: text/xml; charset=UTF-8
Content-Transfer-Encoding: binary
Content-ID: <0.root-gd@apache.org>

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
</soapenv:Envelope>
--MIMEBoundary_3b9e
Content-Type: application/pdf
Content-Transfer-Encoding: binary
Content-ID: <5f0c2d9e-8a41-4c57-9a3e-0d6b1e7f2a10>

JVBERi0xLjQKJSBkZW1vIGF0dGFjaG1lbnQK
--MIMEBoundary_3b9e--
"""

#: §6.5 error
GET_DOCUMENT_ERROR_BODY: Final = """<soapenv:Body>
  <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:IsSuccess>false</edXML:IsSuccess>
    <edXML:ErrorList>
      <edXML:Error>
        <edXML:Code>M.GetDocumentCheckAllow</edXML:Code>
        <edXML:Description>Not find document pending in cache, database docId 48299 organId 000.00.13.H53</edXML:Description>
      </edXML:Error>
    </edXML:ErrorList>
  </edXML:Report>
</soapenv:Body>
"""

#: §6.6 request
CONFIRM_RECEIVED_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <ConfirmReceived>
      <OrganId>000.00.13.H53</OrganId>
      <Token>RXhhbXBsZVRva2VuRm9yUmVjdjE=</Token>
      <DocumentId>48213</DocumentId>
    </ConfirmReceived>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

#: §6.6 success response
CONFIRM_RECEIVED_BODY: Final = """<soapenv:Body>
  <edXML:ConfirmReceivedResponse xmlns:edXML="http://www.e-doc.vn/Schema/">
    <edXML:Report xmlns:edXML="http://www.e-doc.vn/Schema/">
      <edXML:IsSuccess>true</edXML:IsSuccess>
      <edXML:ErrorList/>
    </edXML:Report>
  </edXML:ConfirmReceivedResponse>
</soapenv:Body>
"""

#: §6.7 request
UPDATE_TRACES_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
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
</SOAP-ENV:Envelope>
"""

#: §6.8 request
GET_TRACES_REQUEST: Final = """<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Body>
    <GetTraces>
      <OrganId>000.00.12.H53</OrganId>
      <Token>Qm9ndXNUb2tlbkV4YW1wbGUwMDE=</Token>
      <!-- optional: <TimeStamp>2024/05/01 00:00:00</TimeStamp> -->
    </GetTraces>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""

#: §6.8 success response
GET_TRACES_BODY: Final = """<soapenv:Body>
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
</soapenv:Body>
"""
