"""Reference data for synthetic citizens: common names and the places of Kazakhstan.

Names are transliterated the way Kazakh identity documents commonly spell them, in a
Kazakh and a Russian group (a family's names come from one group).
Surnames are kept in their male form (-ov, -ev, -in); ``surname_for`` gives the
female form. Patronymics follow the Russian pattern (Nurlanovich, Nurlanovna) or the
Kazakh one (Nurlanuly, Nurlankyzy), which ``patronymic_for`` builds from the father's
first name.
"""

from __future__ import annotations

KAZAKH_MALE_NAMES: tuple[str, ...] = (
    "Nurlan", "Askar", "Serik", "Yerlan", "Daniyar", "Arman", "Bauyrzhan", "Yerzhan",
    "Marat", "Talgat", "Aidos", "Azamat", "Dauren", "Kanat", "Nurzhan", "Rustem", "Timur",
    "Berik", "Zhandos", "Alikhan", "Nursultan", "Almas", "Asylbek", "Bolat", "Galym",
    "Dias", "Ayan", "Alibek", "Sanzhar", "Temirlan", "Yernar", "Arsen", "Amir", "Alisher",
    "Kairat", "Murat", "Sultan", "Yersultan", "Abylai", "Rakhat", "Zhanibek", "Yesbol",
)
RUSSIAN_MALE_NAMES: tuple[str, ...] = (
    "Aleksandr", "Sergei", "Dmitry", "Andrei", "Vladimir", "Nikolai", "Ivan", "Mikhail",
    "Alexei", "Yevgeny", "Viktor", "Oleg", "Roman", "Maxim",
)
KAZAKH_FEMALE_NAMES: tuple[str, ...] = (
    "Aigerim", "Aruzhan", "Dana", "Gulnara", "Aliya", "Saule", "Dinara", "Zhanar",
    "Ainur", "Madina", "Asel", "Kamila", "Aisha", "Ayaru", "Zarina", "Gulmira", "Aizhan",
    "Botagoz", "Nazerke", "Akbota", "Dilnaz", "Raushan", "Meruert", "Zhuldyz", "Moldir",
    "Tomiris", "Sabina", "Symbat", "Inkar", "Anel", "Ardak", "Gaukhar", "Laura", "Assem",
)
RUSSIAN_FEMALE_NAMES: tuple[str, ...] = (
    "Elena", "Olga", "Tatyana", "Natalya", "Irina", "Svetlana", "Anna", "Yekaterina",
    "Marina", "Lyudmila", "Galina", "Yulia", "Viktoria",
)
KAZAKH_SURNAMES: tuple[str, ...] = (
    "Akhmetov", "Abenov", "Nurlanov", "Iskakov", "Suleimenov", "Omarov", "Zhakupov",
    "Tokayev", "Baimukhamedov", "Kassymov", "Serikbayev", "Zhumabayev", "Abdrakhmanov",
    "Mukhametov", "Bekov", "Sadykov", "Utebayev", "Ospanov", "Tulegenov", "Kenzhebayev",
    "Nurmagambetov", "Amanzholov", "Yessenov", "Karimov", "Ismailov", "Zhunusov",
    "Beisenov", "Dzhaksybekov", "Sarsenbayev", "Temirbekov", "Abishev", "Kaliyev",
    "Mamyrov", "Rakhimov", "Tasmagambetov", "Yerzhanov", "Baigozhin", "Mussin",
)
RUSSIAN_SURNAMES: tuple[str, ...] = (
    "Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Lebedev", "Kozlov",
    "Novikov", "Morozov", "Pavlov", "Volkov", "Fedorov", "Belov",
)

MALE_NAMES: tuple[str, ...] = KAZAKH_MALE_NAMES + RUSSIAN_MALE_NAMES
FEMALE_NAMES: tuple[str, ...] = KAZAKH_FEMALE_NAMES + RUSSIAN_FEMALE_NAMES
SURNAMES: tuple[str, ...] = KAZAKH_SURNAMES + RUSSIAN_SURNAMES

# Other citizenships seen among permanent residents (ISO 3166 alpha-3).
OTHER_CITIZENSHIPS: tuple[str, ...] = ("RUS", "UZB", "KGZ", "CHN", "TUR")

# region -> (weight in thousands of residents, ((district, locality), ...)).
REGIONS: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "Almaty city": (2230, (
        ("Alatau district", "Almaty"), ("Almaly district", "Almaty"),
        ("Auezov district", "Almaty"), ("Bostandyk district", "Almaty"),
        ("Zhetysu district", "Almaty"), ("Medeu district", "Almaty"),
        ("Nauryzbay district", "Almaty"), ("Turksib district", "Almaty"),
    )),
    "Astana city": (1420, (
        ("Almaty district", "Astana"), ("Baikonyr district", "Astana"),
        ("Yesil district", "Astana"), ("Saryarka district", "Astana"),
        ("Nura district", "Astana"),
    )),
    "Shymkent city": (1220, (
        ("Abay district", "Shymkent"), ("Al-Farabi district", "Shymkent"),
        ("Enbekshi district", "Shymkent"), ("Karatau district", "Shymkent"),
        ("Turan district", "Shymkent"),
    )),
    "Turkistan region": (2110, (
        ("Turkistan city", "Turkistan"), ("Kentau city", "Kentau"),
        ("Sairam district", "Aksukent"), ("Saryagash district", "Saryagash"),
        ("Maktaaral district", "Myrzakent"),
    )),
    "Almaty region": (1510, (
        ("Konaev city", "Konaev"), ("Talgar district", "Talgar"),
        ("Karasay district", "Kaskelen"), ("Ile district", "Otegen Batyr"),
        ("Enbekshikazakh district", "Yesik"),
    )),
    "Karaganda region": (1130, (
        ("Kazybek Bi district", "Karaganda"), ("Alikhan Bokeikhan district", "Karaganda"),
        ("Temirtau city", "Temirtau"), ("Bukhar-Zhyrau district", "Botakara"),
        ("Karkaraly district", "Karkaraly"), ("Osakarov district", "Osakarovka"),
    )),
    "Zhambyl region": (1210, (
        ("Taraz city", "Taraz"), ("Shu district", "Shu"),
        ("Baizak district", "Sarykemer"), ("Kordai district", "Kordai"),
    )),
    "Aktobe region": (920, (
        ("Aktobe city", "Aktobe"), ("Khromtau district", "Khromtau"),
        ("Kargaly district", "Badamsha"),
    )),
    "Kyzylorda region": (830, (
        ("Kyzylorda city", "Kyzylorda"), ("Aral district", "Aralsk"),
        ("Kazaly district", "Ayteke Bi"), ("Shieli district", "Shieli"),
    )),
    "Kostanay region": (830, (
        ("Kostanay city", "Kostanay"), ("Rudny city", "Rudny"),
        ("Kostanay district", "Tobyl"), ("Lisakovsk city", "Lisakovsk"),
    )),
    "Akmola region": (780, (
        ("Kokshetau city", "Kokshetau"), ("Burabay district", "Shchuchinsk"),
        ("Tselinograd district", "Kosshy"), ("Zerendi district", "Zerendi"),
    )),
    "Pavlodar region": (750, (
        ("Pavlodar city", "Pavlodar"), ("Ekibastuz city", "Ekibastuz"),
        ("Aksu city", "Aksu"),
    )),
    "Mangystau region": (760, (
        ("Aktau city", "Aktau"), ("Zhanaozen city", "Zhanaozen"),
        ("Mangystau district", "Shetpe"), ("Tupkaragan district", "Fort-Shevchenko"),
    )),
    "East Kazakhstan region": (720, (
        ("Oskemen city", "Oskemen"), ("Ridder city", "Ridder"),
        ("Glubokoye district", "Glubokoye"), ("Zaisan district", "Zaisan"),
    )),
    "Atyrau region": (700, (
        ("Atyrau city", "Atyrau"), ("Zhylyoi district", "Kulsary"),
        ("Makhambet district", "Makhambet"),
    )),
    "West Kazakhstan region": (690, (
        ("Oral city", "Oral"), ("Burlin district", "Aksai"),
        ("Terekti district", "Fedorovka"),
    )),
    "Zhetysu region": (700, (
        ("Taldykorgan city", "Taldykorgan"), ("Karatal district", "Ushtobe"),
        ("Sarkand district", "Sarkand"), ("Panfilov district", "Zharkent"),
    )),
    "Abai region": (610, (
        ("Semey city", "Semey"), ("Ayagoz district", "Ayagoz"),
        ("Urzhar district", "Urzhar"),
    )),
    "North Kazakhstan region": (530, (
        ("Petropavl city", "Petropavl"), ("Kyzylzhar district", "Beskol"),
        ("Esil district", "Yavlenka"),
    )),
    "Ulytau region": (220, (
        ("Zhezkazgan city", "Zhezkazgan"), ("Satpayev city", "Satpayev"),
        ("Ulytau district", "Ulytau"),
    )),
}

STREETS: tuple[str, ...] = (
    "Abay Avenue", "Dostyk Avenue", "Tole Bi Street", "Kabanbay Batyr Avenue",
    "Satpayev Street", "Baitursynuly Street", "Auezov Street", "Zhambyl Street",
    "Kenesary Street", "Respublika Avenue", "Turan Avenue", "Kunayev Street",
    "Seifullin Street", "Gogol Street", "Pushkin Street", "Abylai Khan Avenue",
    "Raiymbek Avenue", "Momyshuly Street", "Tauelsizdik Avenue", "Mangilik El Avenue",
    "Zheltoksan Street", "Bogenbay Batyr Street", "Karasai Batyr Street", "Al-Farabi Avenue",
    "Tolstoy Street", "Magzhan Zhumabayev Street", "Ualikhanov Street", "Shokan Street",
)


def weighted_places() -> tuple[tuple[str, str, str], ...]:
    """(region, district, locality), each region once per 10 thousand residents, its
    districts in turn: a uniform pick from it is weighted by population (the population
    seed places homes so; the pension seed places employers the same way)."""
    return tuple(
        (region, district, locality)
        for region, (weight, places) in REGIONS.items()
        for index in range(max(1, weight // 10))
        for district, locality in (places[index % len(places)],)
    )


def surname_for(male_surname: str, female: bool) -> str:
    """The surname in the bearer's form: Akhmetov -> Akhmetova, Mussin -> Mussina."""
    return male_surname + "a" if female else male_surname


def male_surname_of(surname: str) -> str:
    """Undo ``surname_for``: Akhmetova -> Akhmetov (male forms pass through)."""
    if surname.endswith(("ova", "eva", "ina")):
        return surname[:-1]
    return surname


def patronymic_for(father_first_name: str, female: bool, kazakh_form: bool = False) -> str:
    """Nurlan -> Nurlanovich / Nurlanovna, or Nurlanuly / Nurlankyzy in the Kazakh form."""
    name = father_first_name
    if kazakh_form:
        return name + ("kyzy" if female else "uly")
    if name.endswith(("ei", "ai")):
        stem = name[:-1] + "e"
    elif name.endswith("y"):
        stem = name[:-1] + "ie"
    else:
        stem = name + "o"
    return stem + ("vna" if female else "vich")
