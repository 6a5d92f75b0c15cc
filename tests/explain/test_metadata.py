"""Metadata evidence, read from real files built here (no binary fixtures)."""

from __future__ import annotations

import datetime
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image, ImageFile
from PIL.PngImagePlugin import PngInfo

from explain.metadata import Evidence, read_evidence
from tests.images import encode, photo_like, png_claiming

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def xmp_packet(source_type_xml: str) -> str:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f"{source_type_xml}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )


def attribute_form(code: str) -> str:
    return f' Iptc4xmpExt:DigitalSourceType="{IPTC}{code}">'


def element_form(code: str) -> str:
    return f">\n <Iptc4xmpExt:DigitalSourceType>{IPTC}{code}</Iptc4xmpExt:DigitalSourceType>\n"


def resource_form(code: str) -> str:
    return f'><Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC}{code}"/>'


def small_photo() -> Image.Image:
    return photo_like(64, 48)


def exif_jpeg(software: str | None, make: str | None, model: str | None) -> bytes:
    exif = Image.Exif()
    for tag, value in ((0x0131, software), (0x010F, make), (0x0110, model)):
        if value is not None:
            exif[tag] = value
    return encode(small_photo(), "JPEG", quality=90, exif=exif.tobytes())


def png_with_text(**chunks: str) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return encode(small_photo(), "PNG", pnginfo=info)


SD_PARAMETERS = (
    "a castle on a hill at sunset, highly detailed\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.9.4"
)

COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in the snow", "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "model": ["4", 0]}},
}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 4, "type": "CheckpointLoaderSimple"}], "links": []}


# --- EXIF ---------------------------------------------------------------------------------------------------


def test_exif_software_names_an_ai_generator():
    evidence = read_evidence(exif_jpeg("Adobe Firefly", "Canon", "Canon EOS R5"))
    assert evidence.software == "Adobe Firefly"
    assert evidence.camera == "Canon EOS R5"  # the make is not repeated
    assert evidence.generator == "Adobe Firefly"
    assert evidence.ai_signals == ["exif:software"]
    assert evidence.says_ai


def test_exif_of_an_ordinary_camera_and_editor_says_nothing_about_ai():
    evidence = read_evidence(exif_jpeg("GIMP 2.10.36", "NIKON CORPORATION", "NIKON D750"))
    assert evidence.software == "GIMP 2.10.36"
    assert evidence.camera == "NIKON CORPORATION NIKON D750"
    assert evidence.generator is None
    assert not evidence.says_ai
    assert not evidence.is_empty


@pytest.mark.parametrize(
    ("software", "generator"),
    [
        ("DALL·E 3", "DALL·E"),  # Pillow writes EXIF ASCII, so this is stored as "DALL?E 3"
        ("DALL-E 2", "DALL·E"),
        ("Midjourney v6", "Midjourney"),
        ("Stable Diffusion XL", "Stable Diffusion"),
        ("ChatGPT", "ChatGPT"),
    ],
)
def test_known_generator_names_in_exif_software(software, generator):
    assert read_evidence(exif_jpeg(software, None, None)).generator == generator


def test_exif_written_as_utf8_is_repaired():
    exif = Image.Exif()
    exif[0x0110] = "Cam__ra"
    raw = exif.tobytes().replace(b"Cam__ra", "Caméra".encode())  # both 7 bytes: the IFD stays valid
    assert read_evidence(encode(small_photo(), "JPEG", exif=raw)).camera == "Caméra"


def test_exif_in_a_png_is_read():
    exif = Image.Exif()
    exif[0x0131] = "Midjourney"
    evidence = read_evidence(encode(small_photo(), "PNG", exif=exif.tobytes()))
    assert evidence.software == "Midjourney"
    assert evidence.says_ai


# --- PNG text chunks ----------------------------------------------------------------------------------------


def test_png_parameters_of_stable_diffusion_webui():
    evidence = read_evidence(png_with_text(parameters=SD_PARAMETERS))
    assert evidence.ai_signals == ["png:sd-webui-parameters"]
    assert evidence.generator == "Stable Diffusion WebUI"
    assert evidence.details["sd_parameters"].startswith("a castle on a hill")
    assert evidence.details["model"] == "v1-5-pruned-emaonly"


def test_png_parameters_excerpt_is_capped():
    evidence = read_evidence(png_with_text(parameters="word " * 5000 + "\nSteps: 30, Sampler: Euler"))
    assert len(evidence.details["sd_parameters"]) <= 300
    assert evidence.says_ai


def test_png_parameters_without_webui_settings_line_is_only_a_detail():
    evidence = read_evidence(png_with_text(parameters="exposure +0.3"))
    assert not evidence.says_ai
    assert evidence.details["sd_parameters"] == "exposure +0.3"


def test_png_comfyui_prompt_and_workflow():
    data = png_with_text(prompt=json.dumps(COMFY_PROMPT), workflow=json.dumps(COMFY_WORKFLOW))
    evidence = read_evidence(data)
    assert evidence.ai_signals == ["png:comfyui"]
    assert evidence.generator == "ComfyUI"
    assert evidence.details["comfyui_prompt"] == "a red fox in the snow"
    assert evidence.details["comfyui_nodes"] == "CLIPTextEncode, CheckpointLoaderSimple, KSampler"
    assert evidence.details["model"] == "sd_xl_base_1.0.safetensors"


def test_png_comfyui_workflow_alone_is_enough():
    assert read_evidence(png_with_text(workflow=json.dumps(COMFY_WORKFLOW))).ai_signals == ["png:comfyui"]


@pytest.mark.parametrize("prompt", ["a plain caption, not JSON", "[1, 2, 3]", '{"a": 1}', "[" * 100_000])
def test_png_prompt_chunk_that_is_not_comfyui(prompt):
    evidence = read_evidence(png_with_text(prompt=prompt))
    assert not evidence.says_ai
    assert evidence.generator is None


# --- XMP digital source type --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [attribute_form, element_form, resource_form])
def test_jpeg_xmp_digital_source_type_trained_algorithmic_media(form):
    data = encode(small_photo(), "JPEG", xmp=xmp_packet(form("trainedAlgorithmicMedia")).encode())
    evidence = read_evidence(data)
    assert evidence.ai_signals == ["xmp:trainedAlgorithmicMedia"]
    assert evidence.details["xmp_digital_source_type"] == "trainedAlgorithmicMedia"


@pytest.mark.parametrize("compressed", [False, True])
def test_png_itxt_xmp_composite_with_trained_algorithmic_media(compressed):
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(element_form("compositeWithTrainedAlgorithmicMedia")), zip=compressed)
    evidence = read_evidence(encode(small_photo(), "PNG", pnginfo=info))
    assert evidence.ai_signals == ["xmp:compositeWithTrainedAlgorithmicMedia"]


def test_webp_xmp_chunk():
    data = encode(small_photo(), "WEBP", xmp=xmp_packet(attribute_form("trainedAlgorithmicMedia")).encode())
    assert read_evidence(data).ai_signals == ["xmp:trainedAlgorithmicMedia"]


def test_xmp_digital_capture_is_a_detail_not_an_ai_signal():
    data = encode(small_photo(), "JPEG", xmp=xmp_packet(attribute_form("digitalCapture")).encode())
    evidence = read_evidence(data)
    assert not evidence.says_ai
    assert evidence.details == {"xmp_digital_source_type": "digitalCapture"}


def test_pixels_are_never_decoded(monkeypatch):
    exif = Image.Exif()
    exif[0x0131] = "Adobe Firefly"
    xmp = xmp_packet(attribute_form("trainedAlgorithmicMedia")).encode()
    files = [
        encode(small_photo(), "JPEG", exif=exif.tobytes(), xmp=xmp),
        encode(small_photo(), "WEBP", exif=exif.tobytes(), xmp=xmp),
        png_with_text(parameters=SD_PARAMETERS),
    ]

    def refuse(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    for data in files:
        assert read_evidence(data).says_ai


# --- hostile and plain inputs -------------------------------------------------------------------------------


def test_plain_photo_has_empty_evidence():
    for image_format in ("JPEG", "PNG", "WEBP"):
        evidence = read_evidence(encode(small_photo(), image_format))
        assert evidence == Evidence()
        assert evidence.is_empty
        assert not evidence.says_ai


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(1000),
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).integers(0, 256, 512, dtype=np.uint8).tobytes(),
        b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\x00\x00" + b"\x00" * 20,
        encode(small_photo(), "PNG")[:40],
        encode(small_photo(), "JPEG")[:3],
        png_claiming(100_000, 100_000),
    ],
    ids=["empty", "zeros", "random", "png-signature-then-noise", "broken-exif", "truncated-png", "jpeg-soi", "bomb"],
)
def test_hostile_input_gives_empty_evidence(data):
    evidence = read_evidence(data)
    assert evidence == Evidence()
    assert not evidence.says_ai


def test_every_truncation_of_a_file_full_of_metadata_is_survived():
    info = PngInfo()
    info.add_text("parameters", SD_PARAMETERS)
    info.add_itxt("XML:com.adobe.xmp", xmp_packet(attribute_form("trainedAlgorithmicMedia")), zip=True)
    data = encode(photo_like(16, 16), "PNG", pnginfo=info)
    for cut in range(0, len(data), 7):
        assert isinstance(read_evidence(data[:cut]), Evidence)


# --- C2PA ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c2pa_signer():
    """An ES256 signer with a test CA and an end-entity certificate (c2pa rejects self-signed end entities)."""
    c2pa = pytest.importorskip("c2pa", reason="c2pa-python is not installed")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tests"),
            ]
        )

    def certificate(subject, issuer, public_key, signing_key, *, ca: bool) -> x509.Certificate:
        usage = dict.fromkeys(
            ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement"]
            + ["encipher_only", "decipher_only"],
            False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate(name("Test CA"), name("Test CA"), ca_key.public_key(), ca_key, ca=True)
    cert = certificate(name("Test signer"), ca_cert.subject, key.public_key(), ca_key, ca=False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, ca_cert))
    private_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private_key, None)
    with c2pa.Signer.from_info(info) as signer:
        yield signer


def c2pa_sign(signer, source: bytes, mime: str, source_type: str) -> bytes:
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "Test Generator", "version": "1.0"}],
        "title": "generated picture",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "softwareAgent": {"name": "Test Model"},
                            "digitalSourceType": source_type,
                        }
                    ]
                },
            }
        ],
    }
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, mime, io.BytesIO(source), signed)
    return signed.getvalue()


@pytest.mark.parametrize(
    ("image_format", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_c2pa_trained_algorithmic_media(c2pa_signer, image_format, mime):
    data = c2pa_sign(c2pa_signer, encode(small_photo(), image_format), mime, IPTC + "trainedAlgorithmicMedia")
    evidence = read_evidence(data)
    assert evidence.c2pa is not None
    assert evidence.c2pa["claim_generator"] == "Test Generator 1.0"
    assert evidence.c2pa["actions"] == ["c2pa.created"]
    assert evidence.c2pa["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert evidence.c2pa["software_agent"] == "Test Model"
    assert evidence.c2pa["signer"] == "Tests"
    assert evidence.c2pa["validation_state"] == "Valid"  # intact, though the test CA is not trusted
    assert evidence.ai_signals == ["c2pa:trainedAlgorithmicMedia"]
    assert evidence.generator == "Test Model"


def test_c2pa_digital_capture_is_not_ai_and_names_no_generator(c2pa_signer):
    data = c2pa_sign(c2pa_signer, exif_jpeg(None, "Leica", "M11-P"), "image/jpeg", IPTC + "digitalCapture")
    evidence = read_evidence(data)
    assert evidence.c2pa["digital_source_types"] == ["digitalCapture"]
    assert evidence.camera == "Leica M11-P"
    assert not evidence.says_ai
    assert evidence.generator is None


def test_c2pa_composite_with_other_evidence_first(c2pa_signer):
    source = png_with_text(parameters=SD_PARAMETERS)
    data = c2pa_sign(c2pa_signer, source, "image/png", IPTC + "compositeWithTrainedAlgorithmicMedia")
    evidence = read_evidence(data)
    assert evidence.ai_signals == ["c2pa:compositeWithTrainedAlgorithmicMedia", "png:sd-webui-parameters"]
    assert evidence.generator == "Test Model"


def test_without_c2pa_installed_the_other_evidence_stays(c2pa_signer, monkeypatch):
    data = c2pa_sign(
        c2pa_signer, exif_jpeg("Adobe Firefly", None, None), "image/jpeg", IPTC + "trainedAlgorithmicMedia"
    )
    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes `import c2pa` raise ImportError
    evidence = read_evidence(data)
    assert evidence.c2pa is None
    assert evidence.ai_signals == ["exif:software"]


def test_corrupt_c2pa_manifest_keeps_the_other_evidence(c2pa_signer):
    data = bytearray(
        c2pa_sign(c2pa_signer, exif_jpeg("Adobe Firefly", None, None), "image/jpeg", IPTC + "trainedAlgorithmicMedia")
    )
    claim = data.find(b"c2cl")  # the claim box inside the JUMBF (APP11) manifest store
    assert claim > 0
    data[claim : claim + 4] = b"xxxx"
    evidence = read_evidence(bytes(data))
    assert "exif:software" in evidence.ai_signals
    assert evidence.software == "Adobe Firefly"


def test_c2pa_of_an_altered_picture_is_reported_invalid(c2pa_signer):
    data = bytearray(
        c2pa_sign(c2pa_signer, encode(small_photo(), "JPEG"), "image/jpeg", IPTC + "trainedAlgorithmicMedia")
    )
    data[-100] ^= 0xFF  # inside the entropy-coded pixels, after the manifest store
    evidence = read_evidence(bytes(data))
    assert evidence.c2pa["validation_state"] == "Invalid"
    assert evidence.ai_signals == ["c2pa:trainedAlgorithmicMedia"]  # still evidence; the state tells how much
