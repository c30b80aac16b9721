"""The "who used my data" page's texts and the members' (agencies') names, in Kazakh,
Russian and English; zhol.portal.i18n adds them to its catalogues."""

from __future__ import annotations

USAGE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "usage": "Who used my data",
        "usage_intro": "Every use of your data on the bus, as each agency's gateway recorded "
        "it: who, when, which service and why. Asked live from every gateway; nothing is "
        "stored by the portal. Your own visits to this portal are uses too.",
        "usage_caption": "Uses of your data, newest first (time in Kazakhstan, UTC+5)",
        "usage_agency": "Agency",
        "usage_all_agencies": "All agencies",
        "usage_from": "From (date)",
        "usage_to": "To (date, inclusive)",
        "usage_show": "Show",
        "usage_time": "Time",
        "usage_client": "System",
        "usage_user": "Acting user",
        "usage_service": "Service and method",
        "usage_purpose": "Purpose",
        "usage_access": "Read or change",
        "usage_message": "Message id",
        "usage_logged_by": "Recorded by gateway",
        "usage_read": "read",
        "usage_change": "change",
        "usage_event": "event",
        "usage_other": "other",
        "usage_none": "No uses of your data were found for this choice.",
        "usage_missing": "This part of the timeline is missing: the gateway could not be "
        "asked now. Try again later. Gateway",
        "usage_truncated": "Older entries exist. Choose a shorter time range to see them.",
        "usage_pages": "Pages",
        "usage_query": "Query of a gateway's log: who used my data",
        "usage_newer": "Newer entries",
        "usage_older": "Older entries",
        "KZ/GOV/MJ": "Ministry of Justice",
        "KZ/GOV/MLSPP": "Ministry of Labour and Social Protection",
        "KZ/GOV/MOH": "Ministry of Health",
        "KZ/GOV/MES": "Ministry of Education",
        "KZ/GOV/MDDIAI": "Ministry of Digital Development (e-Government portal)",
        "KZ/GOV/MDDIAI/portal": "e-Government portal",
    },
    "ru": {
        "usage": "Кто использовал мои данные",
        "usage_intro": "Каждое использование ваших данных в шине, как его записал шлюз "
        "каждого ведомства: кто, когда, какой сервис и зачем. Запрашивается у всех шлюзов "
        "в момент открытия; портал ничего не хранит. Ваши посещения портала тоже "
        "использования.",
        "usage_caption": "Использования ваших данных, сначала новые (время Казахстана, UTC+5)",
        "usage_agency": "Ведомство",
        "usage_all_agencies": "Все ведомства",
        "usage_from": "С (дата)",
        "usage_to": "По (дата включительно)",
        "usage_show": "Показать",
        "usage_time": "Время",
        "usage_client": "Система",
        "usage_user": "Пользователь",
        "usage_service": "Сервис и метод",
        "usage_purpose": "Цель",
        "usage_access": "Чтение или изменение",
        "usage_message": "Идентификатор сообщения",
        "usage_logged_by": "Записал шлюз",
        "usage_read": "чтение",
        "usage_change": "изменение",
        "usage_event": "событие",
        "usage_other": "другое",
        "usage_none": "Использований ваших данных по этому выбору не найдено.",
        "usage_missing": "Этой части истории нет: шлюз сейчас не отвечает. Попробуйте позже. Шлюз",
        "usage_truncated": "Есть более старые записи. Выберите меньший период, чтобы их увидеть.",
        "usage_pages": "Страницы",
        "usage_query": "Запрос к журналу шлюза: кто использовал мои данные",
        "usage_newer": "Более новые",
        "usage_older": "Более старые",
        "KZ/GOV/MJ": "Министерство юстиции",
        "KZ/GOV/MLSPP": "Министерство труда и социальной защиты населения",
        "KZ/GOV/MOH": "Министерство здравоохранения",
        "KZ/GOV/MES": "Министерство просвещения",
        "KZ/GOV/MDDIAI": "Министерство цифрового развития (портал электронного правительства)",
        "KZ/GOV/MDDIAI/portal": "Портал электронного правительства",
    },
    "kk": {
        "usage": "Деректерімді кім пайдаланды",
        "usage_intro": "Деректеріңіздің шинадағы әрбір пайдаланылуы, әр ведомство шлюзі "
        "жазғандай: кім, қашан, қай сервис және не үшін. Барлық шлюздерден ашқан сәтте "
        "сұралады; портал ештеңе сақтамайды. Порталға кіруіңіз де пайдалану болып саналады.",
        "usage_caption": "Деректеріңіздің пайдаланылуы, алдымен жаңалары (Қазақстан уақыты, UTC+5)",
        "usage_agency": "Ведомство",
        "usage_all_agencies": "Барлық ведомстволар",
        "usage_from": "Басы (күні)",
        "usage_to": "Соңы (күні қоса алғанда)",
        "usage_show": "Көрсету",
        "usage_time": "Уақыты",
        "usage_client": "Жүйе",
        "usage_user": "Пайдаланушы",
        "usage_service": "Сервис және әдіс",
        "usage_purpose": "Мақсаты",
        "usage_access": "Оқу немесе өзгерту",
        "usage_message": "Хабар идентификаторы",
        "usage_logged_by": "Жазған шлюз",
        "usage_read": "оқу",
        "usage_change": "өзгерту",
        "usage_event": "оқиға",
        "usage_other": "басқа",
        "usage_none": "Бұл таңдау бойынша деректеріңіздің пайдаланылуы табылмады.",
        "usage_missing": "Тарихтың бұл бөлігі жоқ: шлюз қазір жауап бермейді. Кейінірек "
        "қайталаңыз. Шлюз",
        "usage_truncated": "Ескі жазбалар бар. Оларды көру үшін қысқарақ кезеңді таңдаңыз.",
        "usage_pages": "Беттер",
        "usage_query": "Шлюз журналына сұрау: деректерімді кім пайдаланды",
        "usage_newer": "Жаңалары",
        "usage_older": "Ескілері",
        "KZ/GOV/MJ": "Әділет министрлігі",
        "KZ/GOV/MLSPP": "Еңбек және халықты әлеуметтік қорғау министрлігі",
        "KZ/GOV/MOH": "Денсаулық сақтау министрлігі",
        "KZ/GOV/MES": "Оқу-ағарту министрлігі",
        "KZ/GOV/MDDIAI": "Цифрлық даму министрлігі (электрондық үкімет порталы)",
        "KZ/GOV/MDDIAI/portal": "Электрондық үкімет порталы",
    },
}

# Whose timeline (a parent's minor child), and the federation's list of gateways.
USAGE_CHOICE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "usage_whom": "Whose data",
        "usage_me": "Mine",
        "usage_child": "My child, IIN",
        "usage_child_named": "My child:",
        "usage_of_child": "Uses of your minor child's data, IIN",
        "usage_discovery_unavailable": "The timeline could not be gathered: the list of "
        "the federation's gateways could not be read from the portal's gateway now. Try "
        "again later.",
        "usage_discovery_stale": "The list of the federation's gateways could not be read "
        "now: the gateways known at the last reading were asked; a gateway that joined "
        "since then is missing.",
    },
    "ru": {
        "usage_whom": "Чьи данные",
        "usage_me": "Мои",
        "usage_child": "Мой ребёнок, ИИН",
        "usage_child_named": "Мой ребёнок:",
        "usage_of_child": "Использования данных вашего несовершеннолетнего ребёнка, ИИН",
        "usage_discovery_unavailable": "Историю не удалось собрать: список шлюзов "
        "федерации сейчас не читается у шлюза портала. Попробуйте позже.",
        "usage_discovery_stale": "Список шлюзов федерации сейчас не читается: опрошены "
        "шлюзы, известные при последнем чтении; шлюза, подключившегося после, нет.",
    },
    "kk": {
        "usage_whom": "Кімнің деректері",
        "usage_me": "Менің",
        "usage_child": "Менің балам, ЖСН",
        "usage_child_named": "Менің балам:",
        "usage_of_child": "Кәмелетке толмаған балаңыздың деректерінің пайдаланылуы, ЖСН",
        "usage_discovery_unavailable": "Тарихты жинау мүмкін болмады: федерация "
        "шлюздерінің тізімі қазір портал шлюзінен оқылмайды. Кейінірек қайталаңыз.",
        "usage_discovery_stale": "Федерация шлюздерінің тізімі қазір оқылмайды: соңғы "
        "оқу кезінде белгілі шлюздер сұралды; одан кейін қосылған шлюз жоқ.",
    },
}
