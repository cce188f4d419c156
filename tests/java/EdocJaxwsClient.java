/*
 * A JAX-WS RI client of the gateway, built on the classes `wsimport` generates from wsdl/edoc-gateway.wsdl
 * (package edoc.client), as a Java integrator would write it. Used by tests/test_wsdl_contract.py.
 *
 * The RI reads the WSDL's WS-Policy (metro-policy) when the service is created, but it has no WS-Security runtime
 * (that is Metro's WSIT, not packaged in Debian), so the UsernameToken (PasswordDigest, Nonce, Created) is added
 * by Apache WSS4J in a SOAPHandler: the usual set-up of a plain JAX-WS RI client.
 *
 * Usage: EdocJaxwsClient WSDL_FILE ADDRESS SENDER SENDER_SECRET RECEIVER RECEIVER_SECRET RECEIVER_ORGAN
 * Prints key=value lines; exit 0 only if every call answered as the gateway's contract says.
 */

import edoc.client.AckStatus;
import edoc.client.EdocGateway;
import edoc.client.EdocGateway_Service;
import edoc.client.GatewayError_Exception;
import edoc.client.PackageKind;
import edoc.client.PendingItem;
import edoc.client.Receipt;
import java.io.File;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.soap.SOAPMessage;
import javax.xml.transform.dom.DOMSource;
import javax.xml.ws.BindingProvider;
import javax.xml.ws.handler.Handler;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;
import org.apache.ws.security.WSConstants;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecUsernameToken;
import org.w3c.dom.Document;

public final class EdocJaxwsClient {

    /** Adds a fresh WS-Security UsernameToken (PasswordDigest with Nonce and Created) to every request. */
    static final class UsernameTokenHandler implements SOAPHandler<SOAPMessageContext> {
        private final String user;
        private final String secret;

        UsernameTokenHandler(String user, String secret) {
            this.user = user;
            this.secret = secret;
        }

        @Override
        public boolean handleMessage(SOAPMessageContext context) {
            if (!Boolean.TRUE.equals(context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY))) {
                return true;
            }
            try {
                SOAPMessage message = context.getMessage();
                // WSS4J works on a plain DOM copy of the envelope, which then replaces the SAAJ content (SAAJ 1.4's
                // own DOM refuses nodes WSS4J creates: WRONG_DOCUMENT_ERR on Java 9+).
                DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
                factory.setNamespaceAware(true);
                Document doc = factory.newDocumentBuilder().newDocument();
                doc.appendChild(doc.importNode(message.getSOAPPart().getEnvelope(), true));
                WSSecHeader header = new WSSecHeader();
                header.setMustUnderstand(true);
                header.insertSecurityHeader(doc);
                WSSecUsernameToken token = new WSSecUsernameToken();
                token.setPasswordType(WSConstants.PASSWORD_DIGEST);
                token.setUserInfo(user, secret);
                token.addNonce();
                token.addCreated();
                token.build(doc, header);
                message.getSOAPPart().setContent(new DOMSource(doc));
                message.saveChanges();
                return true;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }

        @Override
        public boolean handleFault(SOAPMessageContext context) {
            return true;
        }

        @Override
        public void close(MessageContext context) {}

        @Override
        public Set<QName> getHeaders() {
            return Collections.emptySet();
        }
    }

    private static EdocGateway port(EdocGateway_Service service, String address, String user, String secret) {
        EdocGateway port = service.getEdocGateway();
        BindingProvider provider = (BindingProvider) port;
        provider.getRequestContext().put(BindingProvider.ENDPOINT_ADDRESS_PROPERTY, address);
        @SuppressWarnings("rawtypes")
        List<Handler> chain = provider.getBinding().getHandlerChain();
        chain.add(new UsernameTokenHandler(user, secret));
        provider.getBinding().setHandlerChain(chain);
        return port;
    }

    private static String sha256(byte[] data) throws Exception {
        StringBuilder hex = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }

    public static void main(String[] args) throws Exception {
        EdocGateway_Service service = new EdocGateway_Service(new File(args[0]).toURI().toURL());
        EdocGateway sender = port(service, args[1], args[2], args[3]);
        EdocGateway receiver = port(service, args[1], args[4], args[5]);

        byte[] data = ("<jaxws-package/>" + System.nanoTime()).getBytes(StandardCharsets.UTF_8);
        Receipt receipt = sender.sendEdoc(data);
        System.out.println("sent.sha256=" + sha256(data));
        System.out.println("receipt.sha256=" + receipt.getSha256());
        System.out.println("receipt.docId=" + receipt.getDocId());

        PendingItem item = null;
        for (PendingItem candidate : receiver.getPendingList(args[6], PackageKind.EDOC, BigInteger.TEN)) {
            if (candidate.getDocId().equals(receipt.getDocId())) {
                item = candidate;
            }
        }
        System.out.println("pending.deliveryId=" + (item == null ? "" : item.getDeliveryId()));
        byte[] fetched = receiver.getEdoc(item.getDeliveryId());
        System.out.println("fetched.sha256=" + sha256(fetched));
        System.out.println("acknowledged=" + receiver.acknowledge(item.getDeliveryId(), AckStatus.DONE, null));

        try {
            receiver.getEdoc("dlv-does-not-exist");
            System.out.println("fault.code=");
        } catch (GatewayError_Exception fault) {
            System.out.println("fault.code=" + fault.getFaultInfo().getCode());
        }
    }
}
