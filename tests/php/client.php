<?php
// A PHP SoapClient of the gateway, as a PHP integrator would write it (tests/test_soap_clients.py runs it against a
// real gunicorn-served gateway on 127.0.0.1).
//
// Usage: php client.php JOB.json   — JOB = {wsdl, send: {system, secret, package}, receive?: {system, secret, organId}}
// ``package`` is a file path. ext-soap has no WS-Security, so the UsernameToken (PasswordDigest: base64(sha1(nonce +
// created + secret)), Nonce, wsu:Created) is built here and attached as a SoapHeader of raw XML (XSD_ANYXML); a fresh
// token per call, since the gateway accepts each Nonce once. ext-soap encodes and decodes xs:base64Binary itself, so
// the package goes in and comes out as raw bytes. Prints ONE JSON object on stdout: the answers, or
// {fault: {code, faultcode, faultstring}} with the gateway's stable code from detail/GatewayError/code.

declare(strict_types=1);

const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const WSU = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
const PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0';
const BASE64 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

function usernameToken(string $system, string $secret): SoapHeader
{
    $nonce = random_bytes(16);
    $created = gmdate('Y-m-d\TH:i:s\Z');
    $digest = base64_encode(sha1($nonce . $created . $secret, true));
    $xml = '<wsse:Security xmlns:wsse="' . WSSE . '" xmlns:wsu="' . WSU . '"><wsse:UsernameToken>'
        . '<wsse:Username>' . htmlspecialchars($system, ENT_XML1) . '</wsse:Username>'
        . '<wsse:Password Type="' . PROFILE . '#PasswordDigest">' . $digest . '</wsse:Password>'
        . '<wsse:Nonce EncodingType="' . BASE64 . '">' . base64_encode($nonce) . '</wsse:Nonce>'
        . '<wsu:Created>' . $created . '</wsu:Created>'
        . '</wsse:UsernameToken></wsse:Security>';
    return new SoapHeader(WSSE, 'Security', new SoapVar($xml, XSD_ANYXML));
}

/** One authenticated system: every call carries a fresh UsernameToken. */
final class Gateway
{
    private SoapClient $client;

    public function __construct(string $wsdl, private string $system, private string $secret)
    {
        $this->client = new SoapClient($wsdl, [
            'cache_wsdl' => WSDL_CACHE_NONE,
            'exceptions' => true,
            'trace' => true,
            'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
        ]);
    }

    public function call(string $operation, array $args): object
    {
        $this->client->__setSoapHeaders([usernameToken($this->system, $this->secret)]);
        return $this->client->__soapCall($operation, [$args]);
    }
}

function run(array $job): array
{
    $sender = new Gateway($job['wsdl'], $job['send']['system'], $job['send']['secret']);
    $sent = $sender->call('SendEdoc', ['edxmlPackage' => file_get_contents($job['send']['package'])]);
    $out = ['receipt' => $sent->receipt];
    if (!isset($job['receive'])) {
        return $out;
    }
    $receiver = new Gateway($job['wsdl'], $job['receive']['system'], $job['receive']['secret']);
    $organ = $job['receive']['organId'];
    $listed = $receiver->call('GetPendingList', ['organId' => $organ, 'kind' => 'edoc', 'limit' => 10]);
    $items = $listed->item ?? [];
    $out['pending'] = $items;
    $deliveryId = $items[0]->deliveryId;
    $fetched = $receiver->call('GetEdoc', ['deliveryId' => $deliveryId]);
    $out['fetched'] = base64_encode($fetched->edxmlPackage); // ext-soap decoded it; JSON needs text
    $acked = $receiver->call('Acknowledge', ['deliveryId' => $deliveryId, 'status' => 'done']);
    $out['acknowledged'] = $acked->ok;
    $after = $receiver->call('GetPendingList', ['organId' => $organ, 'kind' => 'edoc', 'limit' => 10]);
    $out['pendingAfter'] = count($after->item ?? []);
    return $out;
}

$job = json_decode(file_get_contents($argv[1]), true, 512, JSON_THROW_ON_ERROR);
try {
    $out = run($job);
} catch (SoapFault $f) {
    $out = ['fault' => [
        'code' => $f->detail->GatewayError->code ?? null,
        'faultcode' => $f->faultcode,
        'faultstring' => $f->faultstring,
    ]];
}
echo json_encode($out, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
