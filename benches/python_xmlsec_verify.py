"""Verifies one signed XML document N times with python-xmlsec (a keys manager holding the
trust anchor, certificates from X509Data), on one core, and prints documents per second.
Run by benches/verify.rs when a python with xmlsec built against the system libxmlsec1 is
available (benches/setup-python-xmlsec makes one)."""
import sys
import time

import xmlsec
from lxml import etree

document, anchor, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(document, "rb").read()
parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
manager = xmlsec.KeysManager()
manager.load_cert(anchor, xmlsec.constants.KeyDataFormatPem, xmlsec.constants.KeyDataTypeTrusted)


def verify_once():
    root = etree.fromstring(data, parser=parser)
    signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
    xmlsec.tree.add_ids(root, ["Id"])
    context = xmlsec.SignatureContext(manager)
    context.verify(signature)


verify_once()
started = time.process_time()
for _ in range(rounds):
    verify_once()
elapsed = time.process_time() - started
print(f"{rounds / elapsed:.1f} {'.'.join(map(str, xmlsec.get_libxmlsec_version()))}")
