"""Phone-number cases and Google libphonenumber's answers, for the differential test.

Prints one case per line: region TAB input TAB expected, where expected is `+E164` or
`invalid:<reason>` with reason one of invalid_country_code, not_a_number, too_short, too_long,
not_valid. Deterministic: the same cases on every run.
"""

import random
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

SEED = 20261124
TYPES = [
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
]
# International call prefixes as people dial them, by the dialling region.
IDD = {"US": "011", "CA": "011", "AU": "0011", "JP": "010", "GB": "00", "DE": "00", "CH": "00"}
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid_country_code",
    NumberParseException.NOT_A_NUMBER: "not_a_number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}


def expected(text, region):
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as err:
        return "invalid:" + REASONS.get(err.error_type, "not_a_number")
    if not phonenumbers.is_valid_number(number):
        return "invalid:not_valid"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def variants(rng, number, own_region, dial_region):
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    rfc = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)
    out = [
        (intl, dial_region),
        (e164, dial_region),
        (national, own_region),
        (national.replace(" ", "-"), own_region),
        (national.replace(" ", "."), own_region),
        (intl.replace(" ", ""), dial_region),
        (IDD.get(dial_region, "00") + " " + intl[1:], dial_region),
        ("00" + e164[1:], own_region),
        (rfc, dial_region),
        (national.translate(FULL_WIDTH), own_region),
        (intl + " ext. " + str(rng.randint(1, 999)), dial_region),
        (national + " x" + str(rng.randint(1, 9999)), own_region),
        (intl + " #" + str(rng.randint(1, 99)), dial_region),
        (rfc + ";ext=" + str(rng.randint(1, 999)), dial_region),
        ("(" + national + ")", own_region),
        # A national number read with another region's rules: usually wrong, sometimes valid.
        (national, dial_region),
    ]
    return out


def main():
    rng = random.Random(SEED)
    regions = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if r != "001")
    chosen = sorted(rng.sample(regions, 60))
    for must in ["CH", "DE", "FR", "GB", "US", "AT", "IT", "AU", "JP", "CA", "BR", "IN"]:
        if must not in chosen:
            chosen.append(must)
    cases = []
    for region in chosen:
        others = [r for r in ["US", "DE", "CH", "GB", "AU", "JP"] if r != region]
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for _ in range(2):
                number = phonenumbers.parse(
                    phonenumbers.format_number(example, PhoneNumberFormat.E164), None
                )
                # Vary the last digits: mostly still valid, sometimes not; the oracle decides.
                nsn = str(number.national_number)
                tail = "".join(str(rng.randint(0, 9)) for _ in range(min(3, len(nsn) - 1)))
                number.national_number = int(nsn[: len(nsn) - len(tail)] + tail)
                dial_region = rng.choice([region] + others)
                for text, default in variants(rng, number, region, dial_region):
                    cases.append((default, text))
    garbage = ["", "   ", "hello", "12", "+1", "+999 1234 5678", "0000", "+41 44", "1" * 25,
               "+41 44 123 45 67 89 12 34 56", "call me", "++41441234567", "tel:", "+", "#7"]
    for text in garbage:
        for region in ["CH", "US", "DE"]:
            cases.append((region, text))
    for region, text in cases:
        if "\t" in text or "\n" in text:
            continue
        sys.stdout.write(f"{region}\t{text}\t{expected(text, region)}\n")


if __name__ == "__main__":
    main()
