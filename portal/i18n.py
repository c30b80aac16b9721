"""The portal's texts in Kazakh, Russian and English, the agencies' names included.

A page asks ``text(lang, key)``; a key missing in one language falls back to English
(a unit test keeps the three catalogues the same, so that never happens in practice).
"""

from __future__ import annotations

from zhol.portal.calculation_texts import CALCULATION_TEXTS
from zhol.portal.evidence_texts import EVIDENCE_TEXTS
from zhol.portal.feed_texts import FEED_TEXTS
from zhol.portal.pages_texts import PAGES_TEXTS
from zhol.portal.usage_texts import USAGE_CHOICE_TEXTS, USAGE_TEXTS

LANGUAGES = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "kk"
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}

_EN = {
    "portal": "e-Government portal",
    "skip": "Skip to main content",
    "language": "Language",
    "signin": "Sign in",
    "signin_intro": "Sign in with your IIN. We will send a one-time code to the phone "
    "number registered for it.",
    "iin": "IIN (12 digits)",
    "iin_short": "IIN",
    "send_code": "Send code",
    "code": "One-time code (6 digits)",
    "code_sent": "If this IIN is registered, a code has been sent. It is valid for a few "
    "minutes and can be used once.",
    "check_code": "Sign in",
    "signout": "Sign out",
    "me": "About me",
    "family": "My family",
    "name": "Name",
    "birth_date": "Date of birth",
    "address": "Registered address",
    "civil_status": "Civil status",
    "married": "Married",
    "not_married": "Not married",
    "deceased": "Deceased",
    "parents": "Parents",
    "spouse": "Spouse",
    "children": "Children",
    "none": "None registered",
    "minor": "minor",
    "open": "Open",
    "source": "Source",
    "part_unavailable": "Could not be read: the registry is not answering now. The rest of "
    "the page is up to date; try again later.",
    "part_not_found": "The registry has no record about this person.",
    "part_refused": "The registry refused the portal access to this record.",
    "session_ended": "Your session has ended. Please sign in again.",
    "error": "Error",
    "error_400": "The request is not valid.",
    "error_bad_iin": "This is not a valid IIN: an IIN has 12 digits and a check digit.",
    "error_bad_code": "The code is wrong. Check the message and try again.",
    "error_expired_code": "The code has expired or was already used. Ask for a new code.",
    "error_403": "You may not open this page: you can see only your own data and your "
    "minor children's.",
    "error_csrf": "The form has expired or did not come from this portal. Open the page "
    "again and repeat.",
    "error_404": "There is no such page.",
    "error_405": "This page cannot be used that way.",
    "error_413": "The form is too large.",
    "error_429": "Too many attempts. Wait a few minutes and try again.",
    "error_503": "A registry is not answering now. Try again later.",
    "error_500": "Something went wrong on our side. Try again later.",
    "back": "Back to the start",
    "outbox": "SMS outbox (demo only)",
    "outbox_intro": "Demo mode: the messages the portal would have sent by SMS.",
    "to": "To IIN",
    "sent_at": "Sent",
    "KZ/GOV/MJ/population": "Ministry of Justice: population and civil status registry",
    "child_page": "My child",
    "personal": "Personal data",
    "health": "Health",
    "clinic": "Clinic (primary care)",
    "attached_on": "Attached on",
    "insurance": "Health insurance",
    "insured": "Insured",
    "not_insured": "Not insured",
    "pension": "Pension and benefits",
    "receives_pension": "Receives a pension",
    "no_pension": "No pension assigned",
    "benefits": "Benefits",
    "status": "status",
    "assigned_on": "assigned on",
    "education": "Education",
    "kindergarten_queue": "Kindergarten queue",
    "position": "place",
    "school": "School",
    "grade": "grade",
    "KZ/GOV/MOH/health": "Ministry of Health: health registry",
    "KZ/GOV/MLSPP/pension": "Ministry of Labour and Social Protection: pension and benefits",
    "KZ/GOV/MES/education": "Ministry of Education: kindergartens and schools",
}

_RU = {
    "portal": "Портал электронного правительства",
    "skip": "Перейти к основному содержанию",
    "language": "Язык",
    "signin": "Вход",
    "signin_intro": "Войдите по ИИН. Мы отправим одноразовый код на номер телефона, "
    "зарегистрированный за ним.",
    "iin": "ИИН (12 цифр)",
    "iin_short": "ИИН",
    "send_code": "Получить код",
    "code": "Одноразовый код (6 цифр)",
    "code_sent": "Если этот ИИН зарегистрирован, код отправлен. Он действует несколько "
    "минут и только один раз.",
    "check_code": "Войти",
    "signout": "Выйти",
    "me": "Обо мне",
    "family": "Моя семья",
    "name": "ФИО",
    "birth_date": "Дата рождения",
    "address": "Адрес регистрации",
    "civil_status": "Семейное положение",
    "married": "Состоит в браке",
    "not_married": "Не состоит в браке",
    "deceased": "Умер(ла)",
    "parents": "Родители",
    "spouse": "Супруг(а)",
    "children": "Дети",
    "none": "Не зарегистрированы",
    "minor": "несовершеннолетний",
    "open": "Открыть",
    "source": "Источник",
    "part_unavailable": "Не удалось прочитать: реестр сейчас не отвечает. Остальная часть "
    "страницы актуальна; попробуйте позже.",
    "part_not_found": "В реестре нет записи об этом человеке.",
    "part_refused": "Реестр отказал порталу в доступе к этой записи.",
    "session_ended": "Сеанс завершён. Войдите снова.",
    "error": "Ошибка",
    "error_400": "Запрос неверен.",
    "error_bad_iin": "Это неверный ИИН: в ИИН 12 цифр и контрольная цифра.",
    "error_bad_code": "Код неверен. Проверьте сообщение и попробуйте снова.",
    "error_expired_code": "Срок кода истёк или он уже использован. Запросите новый код.",
    "error_403": "Эта страница вам недоступна: вы видите только свои данные и данные своих "
    "несовершеннолетних детей.",
    "error_csrf": "Форма устарела или отправлена не с этого портала. Откройте страницу "
    "снова и повторите.",
    "error_404": "Такой страницы нет.",
    "error_405": "Эту страницу нельзя использовать таким образом.",
    "error_413": "Форма слишком большая.",
    "error_429": "Слишком много попыток. Подождите несколько минут и попробуйте снова.",
    "error_503": "Реестр сейчас не отвечает. Попробуйте позже.",
    "error_500": "Произошла ошибка на нашей стороне. Попробуйте позже.",
    "back": "На главную",
    "outbox": "Исходящие SMS (только демо)",
    "outbox_intro": "Демо-режим: сообщения, которые портал отправил бы по SMS.",
    "to": "Кому (ИИН)",
    "sent_at": "Отправлено",
    "KZ/GOV/MJ/population": "Министерство юстиции: реестр населения и актов гражданского состояния",
    "child_page": "Мой ребёнок",
    "personal": "Личные данные",
    "health": "Здоровье",
    "clinic": "Поликлиника (ПМСП)",
    "attached_on": "Прикреплён с",
    "insurance": "Медицинское страхование",
    "insured": "Застрахован",
    "not_insured": "Не застрахован",
    "pension": "Пенсия и пособия",
    "receives_pension": "Получает пенсию",
    "no_pension": "Пенсия не назначена",
    "benefits": "Пособия",
    "status": "статус",
    "assigned_on": "назначено",
    "education": "Образование",
    "kindergarten_queue": "Очередь в детский сад",
    "position": "место",
    "school": "Школа",
    "grade": "класс",
    "KZ/GOV/MOH/health": "Министерство здравоохранения: регистр здоровья",
    "KZ/GOV/MLSPP/pension": "Министерство труда и социальной защиты: пенсии и пособия",
    "KZ/GOV/MES/education": "Министерство просвещения: детские сады и школы",
}

_KK = {
    "portal": "Электрондық үкімет порталы",
    "skip": "Негізгі мазмұнға өту",
    "language": "Тіл",
    "signin": "Кіру",
    "signin_intro": "ЖСН арқылы кіріңіз. Оған тіркелген телефон нөміріне бір реттік код жібереміз.",
    "iin": "ЖСН (12 сан)",
    "iin_short": "ЖСН",
    "send_code": "Код алу",
    "code": "Бір реттік код (6 сан)",
    "code_sent": "Бұл ЖСН тіркелген болса, код жіберілді. Ол бірнеше минут жарамды және "
    "бір рет қолданылады.",
    "check_code": "Кіру",
    "signout": "Шығу",
    "me": "Мен туралы",
    "family": "Менің отбасым",
    "name": "Аты-жөні",
    "birth_date": "Туған күні",
    "address": "Тіркелген мекенжайы",
    "civil_status": "Отбасылық жағдайы",
    "married": "Некеде",
    "not_married": "Некеде емес",
    "deceased": "Қайтыс болған",
    "parents": "Ата-анасы",
    "spouse": "Жұбайы",
    "children": "Балалары",
    "none": "Тіркелмеген",
    "minor": "кәмелетке толмаған",
    "open": "Ашу",
    "source": "Дереккөз",
    "part_unavailable": "Оқу мүмкін болмады: тізілім қазір жауап бермей тұр. Беттің қалған "
    "бөлігі өзекті; кейінірек қайталаңыз.",
    "part_not_found": "Тізілімде бұл адам туралы жазба жоқ.",
    "part_refused": "Тізілім порталға бұл жазбаға қол жеткізуден бас тартты.",
    "session_ended": "Сеанс аяқталды. Қайта кіріңіз.",
    "error": "Қате",
    "error_400": "Сұрау дұрыс емес.",
    "error_bad_iin": "Бұл дұрыс ЖСН емес: ЖСН 12 саннан және бақылау санынан тұрады.",
    "error_bad_code": "Код қате. Хабарламаны тексеріп, қайталаңыз.",
    "error_expired_code": "Кодтың мерзімі өтті немесе ол қолданылған. Жаңа код сұраңыз.",
    "error_403": "Бұл бетті аша алмайсыз: тек өз деректеріңізді және кәмелетке толмаған "
    "балаларыңыздың деректерін көресіз.",
    "error_csrf": "Форманың мерзімі өтті немесе ол осы порталдан жіберілмеген. Бетті қайта "
    "ашып, қайталаңыз.",
    "error_404": "Мұндай бет жоқ.",
    "error_405": "Бұл бетті осылай пайдалануға болмайды.",
    "error_413": "Форма тым үлкен.",
    "error_429": "Тым көп әрекет. Бірнеше минут күтіп, қайталаңыз.",
    "error_503": "Тізілім қазір жауап бермей тұр. Кейінірек қайталаңыз.",
    "error_500": "Біз тарапта қате болды. Кейінірек қайталаңыз.",
    "back": "Басты бетке",
    "outbox": "Шығыс SMS (тек демо)",
    "outbox_intro": "Демо режимі: портал SMS арқылы жіберетін хабарламалар.",
    "to": "Кімге (ЖСН)",
    "sent_at": "Жіберілді",
    "KZ/GOV/MJ/population": "Әділет министрлігі: халық және азаматтық хал актілері тізілімі",
    "child_page": "Менің балам",
    "personal": "Жеке деректер",
    "health": "Денсаулық",
    "clinic": "Емхана (МСАК)",
    "attached_on": "Тіркелген күні",
    "insurance": "Медициналық сақтандыру",
    "insured": "Сақтандырылған",
    "not_insured": "Сақтандырылмаған",
    "pension": "Зейнетақы және жәрдемақылар",
    "receives_pension": "Зейнетақы алады",
    "no_pension": "Зейнетақы тағайындалмаған",
    "benefits": "Жәрдемақылар",
    "status": "мәртебесі",
    "assigned_on": "тағайындалды",
    "education": "Білім",
    "kindergarten_queue": "Балабақша кезегі",
    "position": "орын",
    "school": "Мектеп",
    "grade": "сынып",
    "KZ/GOV/MOH/health": "Денсаулық сақтау министрлігі: денсаулық тізілімі",
    "KZ/GOV/MLSPP/pension": "Еңбек және халықты әлеуметтік қорғау министрлігі: зейнетақы "
    "және жәрдемақылар",
    "KZ/GOV/MES/education": "Оқу-ағарту министрлігі: балабақшалар мен мектептер",
}

CATALOGUES = {"en": _EN, "ru": _RU, "kk": _KK}
for _lang, _texts in USAGE_TEXTS.items():  # the "who used my data" page's
    CATALOGUES[_lang].update(_texts)
    CATALOGUES[_lang].update(USAGE_CHOICE_TEXTS[_lang])
for _lang, _texts in PAGES_TEXTS.items():  # the pension, health, education pages' and actions'
    CATALOGUES[_lang].update(_texts)
for _lang, _texts in FEED_TEXTS.items():  # the life-events feed's
    CATALOGUES[_lang].update(_texts)
for _lang, _texts in EVIDENCE_TEXTS.items():  # "who used my data": the evidence download's
    CATALOGUES[_lang].update(_texts)
for _lang, _texts in CALCULATION_TEXTS.items():  # the pension calculation's item names
    CATALOGUES[_lang].update(_texts)


def text(lang: str, key: str) -> str:
    return CATALOGUES.get(lang, _EN).get(key) or _EN.get(key, key)


def choose_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """?lang= wins, then the cookie, then the browser's Accept-Language, then Kazakh."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE
