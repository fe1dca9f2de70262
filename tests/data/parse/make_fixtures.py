#!/usr/bin/env python3
"""Regenerates the committed PDF fixtures of the parse module's tests.

Needs (only here, never at test time): qpdf, groff and ghostscript (ps2pdf), e.g.
    apt-get install -y qpdf groff ghostscript

Writes, next to this script:
  encrypted.pdf  a two-page PDF encrypted with AES-256 and the user password "secret"
  owner_only.pdf the same PDF encrypted with an owner password only (opens without a password)
  groff.pdf      a multi-page document typeset by groff -ms (real fonts, headings, running text)
"""
import pathlib
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def minimal_pdf(pages):
    """A small valid PDF with Helvetica text, one list of lines per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        content = "BT /F1 12 Tf 72 720 Td 16 TL\n" + "".join(f"({l}) Tj T*\n" for l in lines) + "ET\n"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>")
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}endstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


GROFF_SOURCE = r""".TL
Parser Fixture Document
.AU
Modulo Tests
.NH
Introduction
.PP
""" + "\n".join(f"Sentence {i} of the introduction explains the purpose of this fixture in plain words." for i in range(90)) + r"""
.NH
Method
.PP
""" + "\n".join(f"Step {i} describes the method with enough words to fill the page." for i in range(90)) + r"""
.NH
Results
.PP
The results section ends the document with the word zebra.
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        plain = pathlib.Path(tmp) / "plain.pdf"
        plain.write_bytes(minimal_pdf([["Secret page one"], ["Secret page two"]]))
        subprocess.run(["qpdf", "--encrypt", "secret", "owner", "256", "--", str(plain), str(HERE / "encrypted.pdf")],
                       check=True)
        subprocess.run(["qpdf", "--encrypt", "", "owner", "256", "--", str(plain), str(HERE / "owner_only.pdf")],
                       check=True)
        ps = subprocess.run(["groff", "-ms", "-Tps"], input=GROFF_SOURCE.encode(), check=True,
                            capture_output=True).stdout
        (pathlib.Path(tmp) / "doc.ps").write_bytes(ps)
        subprocess.run(["ps2pdf", str(pathlib.Path(tmp) / "doc.ps"), str(HERE / "groff.pdf")], check=True)


if __name__ == "__main__":
    main()
