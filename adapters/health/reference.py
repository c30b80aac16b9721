"""The directory of primary-care clinics: health's own facts, generated deterministically.

Every region and district of Kazakhstan that the population seed uses has at least
two clinics, so that everybody registered anywhere can be attached (a test checks
this against ``adapters.population.reference``). The list of places is health's own
copy: the clinic's location is a fact of the clinic, not of any citizen.

Names follow the usual patterns: in the big cities numbered city polyclinics and
family medicine centres; in the regional towns the town's polyclinics; in rural
districts the central district hospital's outpatient department and a medical
outpatient clinic. Clinic ids are ``PHC-<region KATO code>-<serial>``.
"""

from __future__ import annotations

from zhol.adapters.health.model import Clinic

# region -> (KATO region code, ((district, locality), ...)).
PLACES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "Almaty city": ("75", (
        ("Alatau district", "Almaty"), ("Almaly district", "Almaty"),
        ("Auezov district", "Almaty"), ("Bostandyk district", "Almaty"),
        ("Zhetysu district", "Almaty"), ("Medeu district", "Almaty"),
        ("Nauryzbay district", "Almaty"), ("Turksib district", "Almaty"),
    )),
    "Astana city": ("71", (
        ("Almaty district", "Astana"), ("Baikonyr district", "Astana"),
        ("Yesil district", "Astana"), ("Saryarka district", "Astana"),
        ("Nura district", "Astana"),
    )),
    "Shymkent city": ("79", (
        ("Abay district", "Shymkent"), ("Al-Farabi district", "Shymkent"),
        ("Enbekshi district", "Shymkent"), ("Karatau district", "Shymkent"),
        ("Turan district", "Shymkent"),
    )),
    "Turkistan region": ("61", (
        ("Turkistan city", "Turkistan"), ("Kentau city", "Kentau"),
        ("Sairam district", "Aksukent"), ("Saryagash district", "Saryagash"),
        ("Maktaaral district", "Myrzakent"),
    )),
    "Almaty region": ("19", (
        ("Konaev city", "Konaev"), ("Talgar district", "Talgar"),
        ("Karasay district", "Kaskelen"), ("Ile district", "Otegen Batyr"),
        ("Enbekshikazakh district", "Yesik"),
    )),
    "Karaganda region": ("35", (
        ("Kazybek Bi district", "Karaganda"), ("Alikhan Bokeikhan district", "Karaganda"),
        ("Temirtau city", "Temirtau"), ("Bukhar-Zhyrau district", "Botakara"),
        ("Karkaraly district", "Karkaraly"), ("Osakarov district", "Osakarovka"),
    )),
    "Zhambyl region": ("31", (
        ("Taraz city", "Taraz"), ("Shu district", "Shu"),
        ("Baizak district", "Sarykemer"), ("Kordai district", "Kordai"),
    )),
    "Aktobe region": ("15", (
        ("Aktobe city", "Aktobe"), ("Khromtau district", "Khromtau"),
        ("Kargaly district", "Badamsha"),
    )),
    "Kyzylorda region": ("43", (
        ("Kyzylorda city", "Kyzylorda"), ("Aral district", "Aralsk"),
        ("Kazaly district", "Ayteke Bi"), ("Shieli district", "Shieli"),
    )),
    "Kostanay region": ("39", (
        ("Kostanay city", "Kostanay"), ("Rudny city", "Rudny"),
        ("Kostanay district", "Tobyl"), ("Lisakovsk city", "Lisakovsk"),
    )),
    "Akmola region": ("11", (
        ("Kokshetau city", "Kokshetau"), ("Burabay district", "Shchuchinsk"),
        ("Tselinograd district", "Kosshy"), ("Zerendi district", "Zerendi"),
    )),
    "Pavlodar region": ("55", (
        ("Pavlodar city", "Pavlodar"), ("Ekibastuz city", "Ekibastuz"),
        ("Aksu city", "Aksu"),
    )),
    "Mangystau region": ("47", (
        ("Aktau city", "Aktau"), ("Zhanaozen city", "Zhanaozen"),
        ("Mangystau district", "Shetpe"), ("Tupkaragan district", "Fort-Shevchenko"),
    )),
    "East Kazakhstan region": ("63", (
        ("Oskemen city", "Oskemen"), ("Ridder city", "Ridder"),
        ("Glubokoye district", "Glubokoye"), ("Zaisan district", "Zaisan"),
    )),
    "Atyrau region": ("23", (
        ("Atyrau city", "Atyrau"), ("Zhylyoi district", "Kulsary"),
        ("Makhambet district", "Makhambet"),
    )),
    "West Kazakhstan region": ("27", (
        ("Oral city", "Oral"), ("Burlin district", "Aksai"),
        ("Terekti district", "Fedorovka"),
    )),
    "Zhetysu region": ("33", (
        ("Taldykorgan city", "Taldykorgan"), ("Karatal district", "Ushtobe"),
        ("Sarkand district", "Sarkand"), ("Panfilov district", "Zharkent"),
    )),
    "Abai region": ("10", (
        ("Semey city", "Semey"), ("Ayagoz district", "Ayagoz"),
        ("Urzhar district", "Urzhar"),
    )),
    "North Kazakhstan region": ("59", (
        ("Petropavl city", "Petropavl"), ("Kyzylzhar district", "Beskol"),
        ("Esil district", "Yavlenka"),
    )),
    "Ulytau region": ("62", (
        ("Zhezkazgan city", "Zhezkazgan"), ("Satpayev city", "Satpayev"),
        ("Ulytau district", "Ulytau"),
    )),
}

# Names given to family medicine centres (a common naming style: a Kazakh word).
_CENTRE_NAMES: tuple[str, ...] = (
    "Densaulyk", "Shipager", "Senim", "Meyirim", "Zhanuya", "Kamkor", "Salauat",
    "Bolashak", "Emdeu", "Shapagat", "Aiala", "Nur-Shipa", "Sau Bol", "Umit",
)

# Big cities split into city districts: clinics are numbered across the city.
_CITY_DISTRICTS = frozenset({"Almaty city", "Astana city", "Shymkent city"})


def clinic_directory() -> tuple[Clinic, ...]:
    """Every clinic, in (region, district, clinic_id) order; the same list every time."""
    clinics: list[Clinic] = []
    centre = 0
    for region, (code, places) in PLACES.items():
        serial = 0
        polyclinic_number: dict[str, int] = {}
        for district, locality in places:
            for name, capacity in _district_clinics(
                region, district, locality, polyclinic_number, centre
            ):
                serial += 1
                centre += 1
                clinics.append(
                    Clinic(f"PHC-{code}-{serial:03d}", name, region, district, capacity)
                )
    return tuple(clinics)


def _district_clinics(
    region: str,
    district: str,
    locality: str,
    polyclinic_number: dict[str, int],
    centre: int,
) -> list[tuple[str, int]]:
    """(name, capacity) of the clinics of one district."""
    centre_name = _CENTRE_NAMES[centre % len(_CENTRE_NAMES)]
    if region in _CITY_DISTRICTS or district.endswith((" city", "Bi district")) or (
        district == "Alikhan Bokeikhan district"
    ):
        # Urban: numbered city polyclinics (across the city) and a family medicine centre.
        first = polyclinic_number.get(locality, 0) + 1
        second = first + 1
        polyclinic_number[locality] = second
        return [
            (f"{locality} City Polyclinic No. {first}", 30_000 + 1_000 * (first % 5)),
            (f"{locality} City Polyclinic No. {second}", 25_000 + 1_000 * (second % 7)),
            (f"Family Medicine Centre \"{centre_name}\", {locality}", 15_000),
        ]
    return [
        (f"{locality} Central District Hospital, outpatient department", 25_000),
        (f"{locality} Medical Outpatient Clinic", 8_000),
    ]
