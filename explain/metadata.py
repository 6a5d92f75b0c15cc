"""Metadata evidence about whether a picture was AI-generated, read without decoding pixels.

Sources: EXIF Software/Make/Model; PNG text chunks written by Stable Diffusion
WebUI (``parameters``) and ComfyUI (``prompt``, ``workflow``); the IPTC digital
source type in XMP packets; C2PA Content Credentials (through ``c2pa-python``,
optional).

Metadata is evidence, never proof: anyone can write or remove it, and a C2PA
signature is reported here whether or not its certificate is trusted.
Missing metadata proves nothing: Telegram strips it from photos; it survives
only when a picture is sent as a file.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ensemble.preprocess import warnings_ignored

# IPTC digital source types that mean "made (partly) by a generative model".
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})

# Fragments of a tool name, lower-case ASCII letters and digits only (see _known_generator),
# -> the generator's display name.
KNOWN_GENERATORS = (
    ("firefly", "Adobe Firefly"),
    ("dalle", "DALL·E"),
    ("midjourney", "Midjourney"),
    ("stablediffusion", "Stable Diffusion"),
    ("comfyui", "ComfyUI"),
    ("novelai", "NovelAI"),
    ("ideogram", "Ideogram"),
    ("chatgpt", "ChatGPT"),
)

EXCERPT_CHARS = 300
_MAX_JSON_CHARS = 1_000_000  # a ComfyUI graph is tens of kB; refuse to parse more than this
_MAX_XMP_PACKETS = 8

# Pillow's MIME table says image/mpo for multi-picture JPEGs; c2pa only knows them as JPEG.
_MIME_OVERRIDES = {"MPO": "image/jpeg"}

_XMP_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta>", re.DOTALL)
# Iptc4xmpExt:DigitalSourceType written as an attribute, an element, or an rdf:resource.
_DIGITAL_SOURCE_TYPE = re.compile(
    rb"""DigitalSourceType\s*(?:=\s*["']|>\s*|[^<>]*?resource\s*=\s*["'])([^"'<>\s]{1,200})"""
)
_SD_MODEL = re.compile(r"\bModel: ([^,\n]{1,100})")


@dataclass(frozen=True)
class Evidence:
    """What a picture's metadata says about its origin.

    Attributes:
        ai_signals: machine-readable codes, e.g. ``"c2pa:trainedAlgorithmicMedia"``,
            ``"xmp:trainedAlgorithmicMedia"``, ``"png:sd-webui-parameters"``,
            ``"png:comfyui"``, ``"exif:software"``.
        generator: the AI generator's name when the metadata tells it.
        camera: EXIF Make and Model.
        software: EXIF Software.
        c2pa: ``claim_generator``, ``actions``, ``digital_source_types``,
            ``validation_state``, ``signer`` and ``software_agent`` (of the AI
            action) of the C2PA manifest store.
        details: short human-readable excerpts (prompt, model, source type...).
    """

    ai_signals: list[str] = field(default_factory=list)
    generator: str | None = None
    camera: str | None = None
    software: str | None = None
    c2pa: dict[str, Any] | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def says_ai(self) -> bool:
        """Whether any metadata claims the picture came from a generative model."""
        return bool(self.ai_signals)

    @property
    def is_empty(self) -> bool:
        """Whether nothing of interest was found."""
        return not (self.ai_signals or self.generator or self.camera or self.software or self.c2pa or self.details)


def read_evidence(data: bytes) -> Evidence:
    """Read origin metadata from encoded picture bytes without decoding pixels.

    Args:
        data: the encoded file (JPEG, PNG, WebP, ...).

    Returns:
        The evidence found; an empty ``Evidence`` for unreadable or hostile
        input. Never raises.
    """
    try:
        return _read(bytes(data))
    except Exception:  # hostile input must cost the explanation, never the reply
        return Evidence()


def _read(data: bytes) -> Evidence:
    # A picture's metadata is harmless even when its header claims too many pixels, and broken
    # EXIF makes Pillow warn; neither is worth a warning here.
    with warnings_ignored():
        try:
            image = Image.open(io.BytesIO(data))
        except Exception:
            return Evidence()
        with image:
            info = dict(image.info)
            image_format = image.format or ""
            exif = _exif_fields(image)

    signals: list[str] = []
    details: dict[str, str] = {}
    generators: list[str] = []

    software, camera = exif.get("software"), exif.get("camera")
    if software:
        known = _known_generator(software)
        if known:
            signals.append("exif:software")
            generators.append(known)

    _png_text_evidence(info, signals, details, generators)

    for code in _xmp_source_types(data, info):
        details.setdefault("xmp_digital_source_type", code)
        if code in AI_SOURCE_TYPES and f"xmp:{code}" not in signals:
            signals.append(f"xmp:{code}")

    mime = _MIME_OVERRIDES.get(image_format) or Image.MIME.get(image_format)
    c2pa_info = _read_c2pa(data, mime) if mime else None
    if c2pa_info:
        ai_types = [code for code in c2pa_info["digital_source_types"] if code in AI_SOURCE_TYPES]
        signals[:0] = [f"c2pa:{code}" for code in dict.fromkeys(ai_types)]
        # C2PA outranks everything else: it is signed. A camera's claim generator is no AI generator.
        c2pa_generator = c2pa_info["software_agent"] or c2pa_info["claim_generator"]
        if c2pa_generator and (ai_types or _known_generator(c2pa_generator)):
            generators.insert(0, _known_generator(c2pa_generator) or c2pa_generator)

    return Evidence(
        ai_signals=signals,
        generator=generators[0] if generators else None,
        camera=camera,
        software=software,
        c2pa=c2pa_info,
        details=details,
    )


def _exif_fields(image: Image.Image) -> dict[str, str]:
    """EXIF Software and Make + Model, as cleaned strings."""
    # PngImageFile.getexif() decodes the pixels to reach an eXIf chunk after IDAT; skip those.
    if image.format == "PNG" and "exif" not in image.info:
        return {}
    try:
        exif = image.getexif()
        software, make, model = (_clean(exif.get(tag)) for tag in (0x0131, 0x010F, 0x0110))
    except Exception:  # a broken EXIF block costs only the EXIF evidence
        return {}
    fields = {}
    if software:
        fields["software"] = software
    if make and model and model.lower().startswith(make.lower()):
        make = None  # "Canon" + "Canon EOS R5" reads better as the model alone
    camera = " ".join(part for part in (make, model) if part)
    if camera:
        fields["camera"] = camera
    return fields


def _png_text_evidence(info: dict, signals: list[str], details: dict[str, str], generators: list[str]) -> None:
    """Stable Diffusion WebUI and ComfyUI text chunks (Pillow puts chunks before IDAT in ``info``)."""
    parameters = info.get("parameters")
    if isinstance(parameters, str) and parameters.strip():
        details["sd_parameters"] = _excerpt(parameters)
        # "parameters" is a generic key; WebUI always writes a "Steps: N, Sampler: ..." line.
        if "Steps:" in parameters:
            signals.append("png:sd-webui-parameters")
            generators.append("Stable Diffusion WebUI")
            if match := _SD_MODEL.search(parameters):
                details["model"] = _excerpt(match[1], 100)

    prompt, workflow = _json_chunk(info.get("prompt")), _json_chunk(info.get("workflow"))
    nodes = [node for node in prompt.values() if isinstance(node, dict)] if isinstance(prompt, dict) else []
    is_comfy_prompt = any("class_type" in node for node in nodes)
    is_comfy_workflow = isinstance(workflow, dict) and "nodes" in workflow
    if not (is_comfy_prompt or is_comfy_workflow):
        return
    signals.append("png:comfyui")
    generators.append("ComfyUI")
    texts = [node.get("inputs", {}).get("text") for node in nodes if "TextEncode" in str(node.get("class_type"))]
    texts = [text for text in texts if isinstance(text, str) and text.strip()]
    if texts:
        details["comfyui_prompt"] = _excerpt(texts[0])
    classes = sorted({str(node["class_type"]) for node in nodes if "class_type" in node})
    if classes:
        details["comfyui_nodes"] = _excerpt(", ".join(classes))
    checkpoints = [node.get("inputs", {}).get("ckpt_name") for node in nodes]
    checkpoints = [name for name in checkpoints if isinstance(name, str)]
    if checkpoints:
        details["model"] = _excerpt(checkpoints[0], 100)


def _xmp_source_types(data: bytes, info: dict) -> list[str]:
    """IPTC digital source type codes (last URI segment) from every XMP packet found."""
    # Pillow's copies cover compressed PNG iTXt; the raw scan covers the rest (WebP, TIFF...).
    packets = [info.get("xmp"), info.get("XML:com.adobe.xmp")]
    packets = [packet.encode("utf-8", "replace") if isinstance(packet, str) else packet for packet in packets]
    packets += [match[0] for _, match in zip(range(_MAX_XMP_PACKETS), _XMP_PACKET.finditer(data))]
    codes: list[str] = []
    for packet in packets:
        if isinstance(packet, bytes):
            for match in _DIGITAL_SOURCE_TYPE.finditer(packet):
                code = match[1].decode("ascii", "replace").rstrip("/").rsplit("/", 1)[-1]
                if code.isalnum() and code not in codes:
                    codes.append(code)
    return codes


def _read_c2pa(data: bytes, mime: str) -> dict[str, Any] | None:
    """The C2PA manifest store's gist, or None when absent, unreadable or c2pa is not installed."""
    try:
        import c2pa  # optional and heavy (a native library); imported only when a picture is read
    except Exception:
        return None
    try:
        # No network at run time: no remote manifests, no OCSP revocation checks.
        settings = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
        with c2pa.Context.from_dict(settings) as context:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
            if reader is None:
                return None
            with reader:
                store = json.loads(reader.json())
        return _summarize_c2pa(store)
    except Exception:  # c2pa failures must not break the other evidence
        return None


def _summarize_c2pa(store: dict) -> dict[str, Any] | None:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    if not active:
        return None
    actions: list[str] = []
    source_types: list[str] = []
    ai_agent = None
    # Source types from every manifest: an edit of an AI picture keeps its AI parent's manifest.
    for label, manifest in manifests.items():
        for action in _actions(manifest):
            code = str(action.get("digitalSourceType") or "").rstrip("/").rsplit("/", 1)[-1]
            if code and code not in source_types:
                source_types.append(code)
            if label == store.get("active_manifest") and action.get("action"):
                actions.append(str(action["action"]))
            if code in AI_SOURCE_TYPES and ai_agent is None:
                ai_agent = _agent_name(action.get("softwareAgent"))
    signature = active.get("signature_info") or {}
    return {
        "claim_generator": _claim_generator(active),
        "actions": actions,
        "digital_source_types": source_types,
        "validation_state": store.get("validation_state"),
        "signer": signature.get("issuer") or signature.get("common_name"),
        "software_agent": ai_agent,  # of the first action that says "AI"
    }


def _actions(manifest: dict) -> list[dict]:
    found = []
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions"):
            data = assertion.get("data") or {}
            found += [action for action in data.get("actions") or [] if isinstance(action, dict)]
    return found


def _claim_generator(manifest: dict) -> str | None:
    # Claims v2 carry claim_generator_info; v1 a "Product/1.0 c2pa-rs/0.x" string.
    for info in manifest.get("claim_generator_info") or []:
        if isinstance(info, dict) and info.get("name"):
            return _excerpt(" ".join(str(info[key]) for key in ("name", "version") if info.get(key)), 100)
    return _clean(manifest.get("claim_generator"))


def _agent_name(agent: Any) -> str | None:
    # softwareAgent is a string in actions v1, a {"name": ...} object in actions v2.
    return _clean(agent.get("name") if isinstance(agent, dict) else agent)


def _known_generator(name: str) -> str | None:
    # Letters and digits only: "DALL·E", "DALL-E" and Pillow's ASCII-only EXIF "DALL?E" all read "dalle".
    squeezed = re.sub(r"[^a-z0-9]", "", name.lower())
    return next((display for fragment, display in KNOWN_GENERATORS if fragment in squeezed), None)


def _json_chunk(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > _MAX_JSON_CHARS:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return None


def _clean(value: Any) -> str | None:
    """A short printable string from an EXIF/JSON value, or None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, str) and not value.isascii():
        # Pillow reads EXIF ASCII as Latin-1; cameras and tools often write UTF-8 there anyway.
        try:
            value = value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    if not isinstance(value, str):
        return None
    return _excerpt(value.replace("\x00", " "), 100) or None


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Whitespace collapsed, control characters dropped, at most ``limit`` characters."""
    text = " ".join("".join(ch for ch in text[: limit * 4] if ch.isprintable() or ch.isspace()).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
