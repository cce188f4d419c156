import edoc.legacy.*;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import javax.xml.namespace.QName;
import javax.xml.soap.AttachmentPart;
import javax.xml.soap.SOAPElement;
import javax.xml.soap.SOAPEnvelope;
import javax.xml.soap.SOAPException;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;

/**
 * A legacy e-doc.vn client as a Java integrator would write it: the classes wsimport generated from
 * wsdl/edoc-vn-legacy.wsdl, plus the two handlers the JAX-WS RI needs for this profile (unqualified wrappers,
 * Content-IDs the Manifest names; wsdl/README.md). tests/test_edocvn_wsdl.py runs it against a stub that records
 * every request and answers with the spec's example responses, and checks both sides: what JAX-WS put on the wire
 * (the shapes the axis reads) and what it read back (printed as name=value lines).
 *
 * Arguments: the WSDL file, the endpoint URL, an OrganId and its Token.
 */
public final class EdocVnLegacyClient {
    public static void main(String[] args) throws Exception {
        EdocVnLegacyPortType port = new EdocVnLegacy(new File(args[0]).toURI().toURL()).getEdocVnLegacySoap();
        BindingProvider provider = (BindingProvider) port;
        provider.getRequestContext().put(BindingProvider.ENDPOINT_ADDRESS_PROPERTY, args[1]);
        List<Handler> chain = new ArrayList<>(provider.getBinding().getHandlerChain());
        chain.add(new UnqualifiedWrappers());
        provider.getBinding().setHandlerChain(chain);
        String organId = args[2];
        String token = args[3];

        Credentials credentials = new Credentials();
        credentials.setOrganId(organId);
        credentials.setToken(token);
        System.out.println("checkPermission.isSuccess=" + port.checkPermission(credentials).getReport().isIsSuccess());

        OrganizationsResult organizations = port.getOrganizations(credentials);
        System.out.println("getOrganizations.first=" + organizations.getOrganizations().getOrganization().get(0).getOrganName());

        PendingResult pending = port.getPendingDocumentIds(credentials);
        System.out.println("getPendingDocumentIds=" + pending.getDocumentIds().getDocumentId());

        TracesRequest traces = new TracesRequest();
        traces.setOrganId(organId);
        traces.setToken(token);
        TraceStatus status = port.getTraces(traces).getTraces().getStatus().get(0);
        System.out.println("getTraces.statusCode=" + status.getStatusCode());
        System.out.println("getTraces.responseFor.code=" + status.getResponseFor().getCode());

        DocumentRequest document = new DocumentRequest();
        document.setOrganId(organId);
        document.setToken(token);
        document.setDocumentId(48213L);
        System.out.println("confirmReceived.isSuccess=" + port.confirmReceived(document).getReport().isIsSuccess());

        System.out.println("updateTraces.isSuccess=" + port.updateTraces(signature(organId, token), statusUpdate()).getReport().isIsSuccess());

        sendDocument(port, organId, token);
    }

    /**
     * Writes the request wrappers, Status and CheckPermission in no namespace, as the axis needs them (spec 2.3).
     * JAX-WS cannot: an empty targetNamespace in @WebParam means "the default" (JSR 181), so the RI puts these
     * elements and their children in the WSDL's target namespace. This handler moves them back.
     */
    private static final class UnqualifiedWrappers implements SOAPHandler<SOAPMessageContext> {
        private static final String WSDL_NAMESPACE = "urn:edoc-gateway:edoc-vn-legacy:1";

        public boolean handleMessage(SOAPMessageContext context) {
            if (Boolean.TRUE.equals(context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY))) {
                try {
                    SOAPEnvelope envelope = context.getMessage().getSOAPPart().getEnvelope();
                    if (envelope.getHeader() != null) {
                        unqualify(envelope.getHeader());
                    }
                    unqualify(envelope.getBody());
                    context.getMessage().saveChanges();
                } catch (SOAPException e) {
                    throw new IllegalStateException(e);
                }
            }
            return true;
        }

        private static void unqualify(SOAPElement parent) throws SOAPException {
            Iterator<?> children = parent.getChildElements();
            while (children.hasNext()) {
                Object child = children.next();
                if (child instanceof SOAPElement) {
                    SOAPElement element = (SOAPElement) child;
                    if (WSDL_NAMESPACE.equals(element.getNamespaceURI())) {
                        element = element.setElementQName(new QName(element.getLocalName()));
                    }
                    unqualify(element);
                }
            }
        }

        public boolean handleFault(SOAPMessageContext context) {
            return true;
        }

        public void close(MessageContext context) {
        }

        public Set<QName> getHeaders() {
            return Collections.emptySet();
        }
    }

    /** Gives the outbound "attachment" part the Content-ID its Manifest Reference names (href="cid:…"). */
    private static final class ContentIdHandler implements SOAPHandler<SOAPMessageContext> {
        private final String contentId;

        ContentIdHandler(String contentId) {
            this.contentId = contentId;
        }

        public boolean handleMessage(SOAPMessageContext context) {
            if (Boolean.TRUE.equals(context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY))) {
                Iterator<?> parts = context.getMessage().getAttachments();
                while (parts.hasNext()) {
                    AttachmentPart part = (AttachmentPart) parts.next();
                    if (part.getContentId() != null && part.getContentId().startsWith("<attachment=")) {
                        part.setContentId("<" + contentId + ">");
                        part.setMimeHeader("Content-Type", "application/pdf");
                    }
                }
            }
            return true;
        }

        public boolean handleFault(SOAPMessageContext context) {
            return true;
        }

        public void close(MessageContext context) {
        }

        public Set<QName> getHeaders() {
            return Collections.emptySet();
        }
    }

    private static SignatureType signature(String organId, String token) {
        KeyInfoType keyInfo = new KeyInfoType();
        keyInfo.setOrganId(organId);
        keyInfo.setToken(token);
        SignatureType signature = new SignatureType();
        signature.setKeyInfo(keyInfo);
        return signature;
    }

    private static StatusUpdate statusUpdate() {
        ReportingParty from = new ReportingParty();
        from.setOrganId("000.00.13.H53");
        AnsweredDocument answered = new AnsweredDocument();
        answered.setOrganId("000.00.12.H53");
        answered.setCode("125/SXD-VP");
        answered.setPromulgationDate("2024/05/06");
        answered.setDocumentId("000.00.12.H53,2024/05/06,125/SXD-VP");
        ReportingStaff staff = new ReportingStaff();
        staff.setStaff("Lê Văn C");
        StatusUpdate status = new StatusUpdate();
        status.setFrom(from);
        status.setResponseFor(answered);
        status.setStatusCode(3);
        status.setStaffInfo(staff);
        return status;
    }

    private static Party party(String organId, String organName, boolean sender) {
        Party party = new Party();
        party.setOrganId(organId);
        party.setOrganName(organName);
        if (sender) {
            party.setOrganizationInCharge("UBND tỉnh");
        }
        party.setOrganAdd("");
        party.setEmail("");
        party.setTelephone("");
        party.setFax("");
        party.setWebsite("");
        return party;
    }

    /**
     * SendDocument with one attachment, passed as the generated method's attachment parameter.
     */
    private static void sendDocument(EdocVnLegacyPortType port, String organId, String token) {
        MessageHeaderType header = new MessageHeaderType();
        header.setFrom(party(organId, "Sở Xây dựng", true));
        header.getTo().add(party("000.00.13.H53", "Sở Thông tin và Truyền thông", false));
        header.setDocumentId(organId + ",2024/05/06,125/SXD-VP");
        DocumentCode code = new DocumentCode();
        code.setCodeNumber("125");
        code.setCodeNotation("SXD-VP");
        header.setCode(code);
        PromulgationInfoType promulgation = new PromulgationInfoType();
        promulgation.setPlace("Tây Ninh");
        promulgation.setPromulgationDate("2024/05/06");
        header.setPromulgationInfo(promulgation);
        DocumentTypeInfo type = new DocumentTypeInfo();
        type.setType("1");
        type.setTypeName("Công văn");
        header.setDocumentType(type);
        header.setSubject("V/v góp ý dự thảo quy chế");
        header.setContent("");
        SignerInfoType signer = new SignerInfoType();
        signer.setCompetence("KT. GIÁM ĐỐC");
        signer.setFullName("Nguyễn Văn A");
        signer.setPosition("Phó Giám đốc");
        header.setSignerInfo(signer);
        header.setDueDate("");
        header.setToPlaces(new PlaceList());
        OtherInfoType other = new OtherInfoType();
        other.setPriority("0");
        other.setSphereOfPromulgation("");
        other.setTyperNotation("VP");
        other.setPromulgationAmount("1");
        other.setPageAmount("2");
        other.setAppendixes(new AppendixList());
        header.setOtherInfo(other);

        TraceHeaderType trace = new TraceHeaderType();
        trace.setOrganId(organId);
        trace.setTimestamp("2024/05/06 09:15:00");
        BusinessType business = new BusinessType();
        business.setBusinessDocType("0");
        business.setBusinessDocReason("Văn bản mới");
        business.setPaper("0");
        TraceHeaderListType traces = new TraceHeaderListType();
        traces.getTraceHeader().add(trace);
        traces.setBusiness(business);

        AttachmentReference reference = new AttachmentReference();
        reference.setHref("cid:att-1@qlvb.example");
        reference.setAttachmentName("125-SXD-VP.pdf");
        ManifestType manifest = new ManifestType();
        manifest.getReference().add(reference);

        // JAX-WS names the part of the WSDL's "attachment" parameter itself (Content-ID attachment=<uuid>@…), so the
        // Manifest cannot know it in advance; the handler renames it to the id the Manifest references.
        BindingProvider provider = (BindingProvider) port;
        List<Handler> chain = new ArrayList<>(provider.getBinding().getHandlerChain());
        chain.add(new ContentIdHandler("att-1@qlvb.example"));
        provider.getBinding().setHandlerChain(chain);
        byte[] pdf = "%PDF-1.4 demo".getBytes(StandardCharsets.US_ASCII);
        SendDocumentResult result = port.sendDocument(header, traces, new ErrorListType(), signature(organId, token), manifest, pdf);
        System.out.println("sendDocument.isSuccess=" + result.getReport().isIsSuccess());
        System.out.println("sendDocument.documentId=" + result.getDocumentId());
    }
}
