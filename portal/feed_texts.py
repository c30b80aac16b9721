"""The life-events feed's texts in Kazakh, Russian and English; zhol.portal.i18n adds
them to its catalogues."""

from __future__ import annotations

FEED_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "feed_payments_stopped": "Payments stopped",
        "feed_why_stopped_death": "A death was registered: the pensions and benefits paid "
        "to the person, or for them, stop from the date shown.",
        "feed_why_stopped": "The pension agency stopped the payments.",
        "feed_stopped_from": "Stopped from",
        "feed_disability": "Disability established",
        "feed_why_disability": "The medical advisory commission examined the person and "
        "recorded its conclusion; the disability group decides benefits and state-paid "
        "health insurance.",
        "feed_disability_group": "Disability group",
        "feed_until": "Until",
        "feed_indefinite": "no re-examination date",
        "feed_enrolled": "Enrolled in school",
        "feed_why_enrolled": "The school enrolled the pupil for the school year shown.",
        "feed_school": "School",
        "feed_grade": "Grade",
        "feed_school_year": "School year from",
        "feed_enrolment": "Enrolment number",
        "feed_new": "New",
        "feed_unread": "Unread",
        "feed_new_count": "{n} new",
        "feed_mark_read": "Mark as read",
        "feed_mark_all_read": "Mark all as read",
        "feed": "Life events and decisions",
        "feed_intro": "What the state decided for you and your minor children with no "
        "application: each agency sends its decision to the portal over the bus. The "
        "portal keeps only the decision's identifiers and facts, for two years.",
        "feed_no_children": "Your children's decisions could not be included now",
        "feed_none": "No decisions about you or your minor children yet.",
        "feed_when": "When",
        "feed_agency": "Decided by",
        "feed_for": "For",
        "feed_for_you": "you",
        "feed_for_child": "your child",
        "feed_why": "Why",
        "feed_basis": "basis",
        "feed_amount": "Amount",
        "feed_monthly_amount": "Monthly amount",
        "feed_recalculated_child_care_allowance": "Child-care allowance recalculated",
        "feed_recalculated_disability_benefit": "Disability benefit recalculated",
        "feed_recalculated_carer_of_disabled_child": "Benefit for raising a disabled child "
        "recalculated",
        "feed_recalculated_age_pension": "Age pension recalculated",
        "feed_recalculated_survivor_pension": "Survivor's pension recalculated",
        "feed_why_recalculated": "The rule the decision was made under has changed: the "
        "payments are recalculated by the law in force. Payments already made stay; what "
        "was paid too little is paid as arrears.",
        "feed_old_amount": "Was, a month",
        "feed_new_amount": "Now, a month",
        "feed_arrears": "Arrears to be paid",
        "feed_frequency": "Paid",
        "feed_monthly": "monthly",
        "feed_one_off": "once",
        "feed_effective_from": "From",
        "feed_clinic": "Clinic",
        "feed_on": "Date",
        "feed_district": "District",
        "feed_queued_on": "In the queue since",
        "feed_benefit_childbirth_lump_sum": "Childbirth benefit assigned",
        "feed_benefit_child_care_allowance": "Child-care allowance assigned",
        "feed_benefit_disability_benefit": "Disability benefit assigned",
        "feed_benefit_burial_benefit": "Burial benefit assigned",
        "feed_benefit_burial_savings_payment": "Burial payment from pension savings assigned",
        "feed_benefit_carer_of_disabled_child": "Benefit for raising a disabled child assigned",
        "feed_pension_age": "Age pension assigned",
        "feed_pension_disability": "Disability pension assigned",
        "feed_pension_survivor": "Survivor's pension assigned",
        "feed_clinic_attached": "Attached to a clinic",
        "feed_queued": "Place in the kindergarten queue",
        "feed_queue_moved": "Kindergarten queue place moved",
        "feed_decision": "Decision",
        "feed_why_benefit_childbirth_lump_sum": "A child's birth was registered: the "
        "one-off childbirth benefit is due to the mother.",
        "feed_why_benefit_child_care_allowance": "A child's birth was registered: the "
        "allowance for caring for a child under one and a half is due.",
        "feed_why_benefit_disability_benefit": "The medical commission established a "
        "disability.",
        "feed_why_benefit_burial_benefit": "A death was registered: the burial benefit is due.",
        "feed_why_benefit_burial_savings_payment": "A death was registered: the deceased had "
        "pension savings, a lump sum for the burial is paid from them.",
        "feed_why_benefit_carer_of_disabled_child": "A disability of the child was "
        "established: the parent raising the child is entitled.",
        "feed_why_pension_age": "You reached the retirement age: the pension is assigned "
        "from your contributions and work record.",
        "feed_why_pension_disability": "A disability was established.",
        "feed_why_pension_survivor": "The breadwinner's death was registered.",
        "feed_why_clinic_newborn": "A child's birth was registered: the newborn is "
        "attached to a clinic with no application.",
        "feed_why_clinic_request": "You asked for this clinic.",
        "feed_why_clinic_address_change": "The registered address changed: attached to the "
        "clinic of the new address.",
        "feed_why_queued_newborn": "A child's birth was registered: the child is put in the "
        "kindergarten queue of the family's district from the day of birth.",
        "feed_why_queued_moved": "The registered address changed.",
        "feed_why_queued_request": "A parent asked.",
        "feed_why_queue_moved": "The registered address changed: the place moved to the new "
        "district, keeping its seniority.",
        "feed_why_unknown": "See the agency's decision.",
        "feed_kindergarten": "Kindergarten",
        "feed_placed": "Kindergarten place given",
        "feed_why_placed": "Your child's turn in the kindergarten queue came: a place in "
        "a kindergarten of the district is given.",
    },
    "ru": {
        "feed_payments_stopped": "Выплаты прекращены",
        "feed_why_stopped_death": "Зарегистрирована смерть: пенсии и пособия, выплачиваемые "
        "этому человеку или на него, прекращаются с указанной даты.",
        "feed_why_stopped": "Пенсионное ведомство прекратило выплаты.",
        "feed_stopped_from": "Прекращены с",
        "feed_disability": "Установлена инвалидность",
        "feed_why_disability": "Медико-социальная экспертиза освидетельствовала человека и "
        "вынесла заключение; от группы инвалидности зависят пособия и страхование за счёт "
        "государства.",
        "feed_disability_group": "Группа инвалидности",
        "feed_until": "До",
        "feed_indefinite": "без срока переосвидетельствования",
        "feed_enrolled": "Зачисление в школу",
        "feed_why_enrolled": "Школа зачислила ученика на указанный учебный год.",
        "feed_school": "Школа",
        "feed_grade": "Класс",
        "feed_school_year": "Учебный год с",
        "feed_enrolment": "Номер зачисления",
        "feed_new": "Новое",
        "feed_unread": "Непрочитанные",
        "feed_new_count": "новых: {n}",
        "feed_mark_read": "Отметить как прочитанное",
        "feed_mark_all_read": "Отметить все как прочитанные",
        "feed": "Жизненные события и решения",
        "feed_intro": "Что государство решило для вас и ваших несовершеннолетних детей без "
        "заявления: каждое ведомство передаёт своё решение порталу через шину. Портал "
        "хранит только идентификаторы и факты решения, два года.",
        "feed_no_children": "Решения о ваших детях сейчас не удалось включить",
        "feed_none": "Решений о вас и ваших несовершеннолетних детях пока нет.",
        "feed_when": "Когда",
        "feed_agency": "Кто решил",
        "feed_for": "Для кого",
        "feed_for_you": "для вас",
        "feed_for_child": "ваш ребёнок",
        "feed_why": "Почему",
        "feed_basis": "основание",
        "feed_amount": "Сумма",
        "feed_monthly_amount": "Сумма в месяц",
        "feed_recalculated_child_care_allowance": "Пособие по уходу за ребёнком пересчитано",
        "feed_recalculated_disability_benefit": "Пособие по инвалидности пересчитано",
        "feed_recalculated_carer_of_disabled_child": "Пособие воспитывающему ребёнка с "
        "инвалидностью пересчитано",
        "feed_recalculated_age_pension": "Пенсия по возрасту пересчитана",
        "feed_recalculated_survivor_pension": "Пенсия по случаю потери кормильца "
        "пересчитана",
        "feed_why_recalculated": "Правило, по которому было принято решение, изменилось: "
        "выплаты пересчитаны по действующему закону. Уже произведённые выплаты сохраняются; "
        "недоплаченное выплачивается доплатой.",
        "feed_old_amount": "Было в месяц",
        "feed_new_amount": "Стало в месяц",
        "feed_arrears": "Доплата",
        "feed_frequency": "Выплата",
        "feed_monthly": "ежемесячно",
        "feed_one_off": "единовременно",
        "feed_effective_from": "С",
        "feed_clinic": "Поликлиника",
        "feed_on": "Дата",
        "feed_district": "Район",
        "feed_queued_on": "В очереди с",
        "feed_benefit_childbirth_lump_sum": "Назначено пособие на рождение ребёнка",
        "feed_benefit_child_care_allowance": "Назначено пособие по уходу за ребёнком",
        "feed_benefit_disability_benefit": "Назначено пособие по инвалидности",
        "feed_benefit_burial_benefit": "Назначено пособие на погребение",
        "feed_benefit_burial_savings_payment": "Назначена выплата на погребение из пенсионных "
        "накоплений",
        "feed_benefit_carer_of_disabled_child": "Назначено пособие воспитывающему "
        "ребёнка с инвалидностью",
        "feed_pension_age": "Назначена пенсия по возрасту",
        "feed_pension_disability": "Назначена пенсия по инвалидности",
        "feed_pension_survivor": "Назначена пенсия по случаю потери кормильца",
        "feed_clinic_attached": "Прикрепление к поликлинике",
        "feed_queued": "Место в очереди в детский сад",
        "feed_queue_moved": "Место в очереди в детский сад перенесено",
        "feed_decision": "Решение",
        "feed_why_benefit_childbirth_lump_sum": "Зарегистрировано рождение ребёнка: "
        "матери положено единовременное пособие.",
        "feed_why_benefit_child_care_allowance": "Зарегистрировано рождение ребёнка: "
        "положено пособие по уходу за ребёнком до полутора лет.",
        "feed_why_benefit_disability_benefit": "Медицинская комиссия установила "
        "инвалидность.",
        "feed_why_benefit_burial_benefit": "Зарегистрирована смерть: положено пособие на "
        "погребение.",
        "feed_why_benefit_burial_savings_payment": "Зарегистрирована смерть: у умершего были "
        "пенсионные накопления, из них выплачивается единовременная сумма на погребение.",
        "feed_why_benefit_carer_of_disabled_child": "Ребёнку установлена инвалидность: "
        "положено родителю, воспитывающему ребёнка.",
        "feed_why_pension_age": "Вы достигли пенсионного возраста: пенсия назначена по "
        "вашим взносам и трудовому стажу.",
        "feed_why_pension_disability": "Установлена инвалидность.",
        "feed_why_pension_survivor": "Зарегистрирована смерть кормильца.",
        "feed_why_clinic_newborn": "Зарегистрировано рождение ребёнка: новорождённый "
        "прикреплён к поликлинике без заявления.",
        "feed_why_clinic_request": "Вы попросили эту поликлинику.",
        "feed_why_clinic_address_change": "Изменился адрес регистрации: прикрепление к "
        "поликлинике нового адреса.",
        "feed_why_queued_newborn": "Зарегистрировано рождение ребёнка: ребёнок поставлен в "
        "очередь в детский сад района семьи со дня рождения.",
        "feed_why_queued_moved": "Изменился адрес регистрации.",
        "feed_why_queued_request": "Попросил родитель.",
        "feed_why_queue_moved": "Изменился адрес регистрации: место перенесено в новый "
        "район с сохранением стажа очереди.",
        "feed_why_unknown": "См. решение ведомства.",
        "feed_kindergarten": "Детский сад",
        "feed_placed": "Предоставлено место в детском саду",
        "feed_why_placed": "Подошла очередь ребёнка в детский сад: предоставлено место в "
        "детском саду района.",
    },
    "kk": {
        "feed_payments_stopped": "Төлемдер тоқтатылды",
        "feed_why_stopped_death": "Қайтыс болу тіркелді: осы адамға немесе ол үшін "
        "төленетін зейнетақылар мен жәрдемақылар көрсетілген күннен бастап тоқтатылады.",
        "feed_why_stopped": "Зейнетақы ведомствосы төлемдерді тоқтатты.",
        "feed_stopped_from": "Тоқтатылған күні",
        "feed_disability": "Мүгедектік белгіленді",
        "feed_why_disability": "Медициналық-әлеуметтік сараптама адамды куәландырып, "
        "қорытынды шығарды; жәрдемақылар мен мемлекет есебінен сақтандыру мүгедектік "
        "тобына байланысты.",
        "feed_disability_group": "Мүгедектік тобы",
        "feed_until": "Дейін",
        "feed_indefinite": "қайта куәландыру мерзімінсіз",
        "feed_enrolled": "Мектепке қабылдау",
        "feed_why_enrolled": "Мектеп оқушыны көрсетілген оқу жылына қабылдады.",
        "feed_school": "Мектеп",
        "feed_grade": "Сынып",
        "feed_school_year": "Оқу жылы басталуы",
        "feed_enrolment": "Қабылдау нөмірі",
        "feed_new": "Жаңа",
        "feed_unread": "Оқылмағандар",
        "feed_new_count": "{n} жаңа",
        "feed_mark_read": "Оқылды деп белгілеу",
        "feed_mark_all_read": "Барлығын оқылды деп белгілеу",
        "feed": "Өмірлік оқиғалар мен шешімдер",
        "feed_intro": "Мемлекет сізге және кәмелетке толмаған балаларыңызға өтінішсіз "
        "қабылдаған шешімдер: әр ведомство өз шешімін порталға шина арқылы жібереді. "
        "Портал шешімнің тек сәйкестендіргіштері мен фактілерін екі жыл сақтайды.",
        "feed_no_children": "Балаларыңыз туралы шешімдерді қазір қосу мүмкін болмады",
        "feed_none": "Сіз және кәмелетке толмаған балаларыңыз туралы шешімдер әлі жоқ.",
        "feed_when": "Қашан",
        "feed_agency": "Кім шешті",
        "feed_for": "Кімге",
        "feed_for_you": "сізге",
        "feed_for_child": "балаңыз",
        "feed_why": "Неге",
        "feed_basis": "негіз",
        "feed_amount": "Сомасы",
        "feed_monthly_amount": "Айлық сомасы",
        "feed_recalculated_child_care_allowance": "Баланы күтуге арналған жәрдемақы қайта "
        "есептелді",
        "feed_recalculated_disability_benefit": "Мүгедектік бойынша жәрдемақы қайта есептелді",
        "feed_recalculated_carer_of_disabled_child": "Мүгедек баланы тәрбиелеушіге жәрдемақы "
        "қайта есептелді",
        "feed_recalculated_age_pension": "Жасына байланысты зейнетақы қайта есептелді",
        "feed_recalculated_survivor_pension": "Асыраушысынан айырылу бойынша зейнетақы қайта "
        "есептелді",
        "feed_why_recalculated": "Шешім қабылданған ереже өзгерді: төлемдер қолданыстағы заң "
        "бойынша қайта есептелді. Жасалған төлемдер сақталады; кем төленгені қосымша "
        "төленеді.",
        "feed_old_amount": "Бұрын, айына",
        "feed_new_amount": "Енді, айына",
        "feed_arrears": "Қосымша төлем",
        "feed_frequency": "Төлем",
        "feed_monthly": "ай сайын",
        "feed_one_off": "біржолғы",
        "feed_effective_from": "Бастап",
        "feed_clinic": "Емхана",
        "feed_on": "Күні",
        "feed_district": "Аудан",
        "feed_queued_on": "Кезекте",
        "feed_benefit_childbirth_lump_sum": "Бала тууына байланысты жәрдемақы тағайындалды",
        "feed_benefit_child_care_allowance": "Баланы күтуге арналған жәрдемақы тағайындалды",
        "feed_benefit_disability_benefit": "Мүгедектік бойынша жәрдемақы тағайындалды",
        "feed_benefit_burial_benefit": "Жерлеуге арналған жәрдемақы тағайындалды",
        "feed_benefit_burial_savings_payment": "Зейнетақы жинақтарынан жерлеуге төлем "
        "тағайындалды",
        "feed_benefit_carer_of_disabled_child": "Мүгедек баланы тәрбиелеушіге жәрдемақы "
        "тағайындалды",
        "feed_pension_age": "Жасына байланысты зейнетақы тағайындалды",
        "feed_pension_disability": "Мүгедектік бойынша зейнетақы тағайындалды",
        "feed_pension_survivor": "Асыраушысынан айырылу бойынша зейнетақы тағайындалды",
        "feed_clinic_attached": "Емханаға тіркелу",
        "feed_queued": "Балабақшаға кезектегі орын",
        "feed_queue_moved": "Балабақшаға кезектегі орын ауыстырылды",
        "feed_decision": "Шешім",
        "feed_why_benefit_childbirth_lump_sum": "Баланың туылуы тіркелді: анасына "
        "біржолғы жәрдемақы тиесілі.",
        "feed_why_benefit_child_care_allowance": "Баланың туылуы тіркелді: бір жарым "
        "жасқа дейінгі баланы күтуге жәрдемақы тиесілі.",
        "feed_why_benefit_disability_benefit": "Медициналық комиссия мүгедектікті белгіледі.",
        "feed_why_benefit_burial_benefit": "Қайтыс болу тіркелді: жерлеуге жәрдемақы "
        "тиесілі.",
        "feed_why_benefit_burial_savings_payment": "Қайтыс болу тіркелді: марқұмның "
        "зейнетақы жинақтары болды, олардан жерлеуге біржолғы сома төленеді.",
        "feed_why_benefit_carer_of_disabled_child": "Балаға мүгедектік белгіленді: баланы "
        "тәрбиелеп отырған ата-анаға тиесілі.",
        "feed_why_pension_age": "Сіз зейнет жасына толдыңыз: зейнетақы жарналарыңыз бен "
        "еңбек өтіліңіз бойынша тағайындалды.",
        "feed_why_pension_disability": "Мүгедектік белгіленді.",
        "feed_why_pension_survivor": "Асыраушының қайтыс болуы тіркелді.",
        "feed_why_clinic_newborn": "Баланың туылуы тіркелді: жаңа туған нәресте "
        "өтінішсіз емханаға тіркелді.",
        "feed_why_clinic_request": "Сіз осы емхананы сұрадыңыз.",
        "feed_why_clinic_address_change": "Тіркелген мекенжай өзгерді: жаңа мекенжайдың "
        "емханасына тіркелді.",
        "feed_why_queued_newborn": "Баланың туылуы тіркелді: бала туған күнінен бастап "
        "отбасы ауданының балабақша кезегіне қойылды.",
        "feed_why_queued_moved": "Тіркелген мекенжай өзгерді.",
        "feed_why_queued_request": "Ата-анасы сұрады.",
        "feed_why_queue_moved": "Тіркелген мекенжай өзгерді: орын кезектегі өтілі "
        "сақталып жаңа ауданға ауыстырылды.",
        "feed_why_unknown": "Ведомствоның шешімін қараңыз.",
        "feed_kindergarten": "Балабақша",
        "feed_placed": "Балабақшадан орын берілді",
        "feed_why_placed": "Баланың балабақша кезегі жетті: аудандағы балабақшадан орын "
        "берілді.",
    },
}
