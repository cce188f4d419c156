// The JDK's own XML-DSig verifier (javax.xml.crypto.dsig, secure validation) over a gateway receipt, trusting
// ONLY the root CA given: the certificate path is built from KeyInfo/X509Data (signer first, then its chain)
// and checked with the JDK's PKIX CertPathValidator, as a Java relying party does. Revocation is not checked
// (a receipt is evidence of what the gateway said; the demo PKI has no CRL distribution points).
//
// Usage (JDK 11+, single-file launch): java VerifyReceipt.java RECEIPT.xml ROOT.pem
// Prints "OK <signer subject>" and exits 0, or "FAIL <reason>" and exits 1.

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Key;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import javax.xml.XMLConstants;
import javax.xml.crypto.AlgorithmMethod;
import javax.xml.crypto.KeySelector;
import javax.xml.crypto.KeySelectorException;
import javax.xml.crypto.KeySelectorResult;
import javax.xml.crypto.XMLCryptoContext;
import javax.xml.crypto.XMLStructure;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

public class VerifyReceipt {
    public static void main(String[] args) throws Exception {
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setNamespaceAware(true);
        dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        dbf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        Document doc = dbf.newDocumentBuilder().parse(new File(args[0]));
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate root;
        try (InputStream in = new FileInputStream(args[1])) {
            root = (X509Certificate) cf.generateCertificate(in);
        }
        NodeList signatures = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
        if (signatures.getLength() != 1) {
            fail("expected one ds:Signature, found " + signatures.getLength());
        }
        PathKeySelector selector = new PathKeySelector(root, cf);
        DOMValidateContext context = new DOMValidateContext(selector, signatures.item(0));
        context.setProperty("org.jcp.xml.dsig.secureValidation", Boolean.TRUE);
        XMLSignature signature = XMLSignatureFactory.getInstance("DOM").unmarshalXMLSignature(context);
        boolean valid;
        try {
            valid = signature.validate(context);
        } catch (Exception e) {
            fail(e.toString());
            return;
        }
        if (!valid) {
            fail("signature value or reference digest does not match");
        }
        System.out.println("OK " + selector.signer.getSubjectX500Principal().getName());
    }

    static void fail(String reason) {
        System.out.println("FAIL " + reason);
        System.exit(1);
    }

    /** The signer's key, once its certificate path (from KeyInfo) validates to the one trusted root. */
    static final class PathKeySelector extends KeySelector {
        private final X509Certificate root;
        private final CertificateFactory factory;
        X509Certificate signer;

        PathKeySelector(X509Certificate root, CertificateFactory factory) {
            this.root = root;
            this.factory = factory;
        }

        @Override
        public KeySelectorResult select(KeyInfo keyInfo, Purpose purpose, AlgorithmMethod method,
                XMLCryptoContext context) throws KeySelectorException {
            List<X509Certificate> certs = new ArrayList<>();
            for (Object item : keyInfo.getContent()) {
                if (item instanceof X509Data) {
                    for (Object entry : ((X509Data) item).getContent()) {
                        if (entry instanceof X509Certificate) {
                            certs.add((X509Certificate) entry);
                        }
                    }
                }
            }
            if (certs.isEmpty()) {
                throw new KeySelectorException("no certificate in KeyInfo");
            }
            try {
                CertPath path = factory.generateCertPath(certs);
                PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
                params.setRevocationEnabled(false);
                CertPathValidator.getInstance("PKIX").validate(path, params);
            } catch (Exception e) {
                throw new KeySelectorException("certificate path: " + e.getMessage(), e);
            }
            signer = certs.get(0);
            Key key = signer.getPublicKey();
            return () -> key;
        }
    }
}
