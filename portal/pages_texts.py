"""The pension, health and education pages' and the actions' texts, in Kazakh, Russian
and English, the registries' codes (benefit kinds, statuses, categories) translated;
zhol.portal.i18n adds them to its catalogues."""

from __future__ import annotations

# key: (en, ru, kk)
_TEXTS: dict[str, tuple[str, str, str]] = {
    "pension_page": ("Pension and benefits", "Пенсия и пособия", "Зейнетақы және жәрдемақылар"),
    "health_page": ("Health", "Здоровье", "Денсаулық"),
    "education_page": ("Education", "Образование", "Білім"),
    "contributions": (
        "Pension contributions by month",
        "Пенсионные взносы по месяцам",
        "Айлар бойынша зейнетақы жарналары",
    ),
    "contributions_caption": (
        "Contributions of the last {n} months, oldest first (tenge)",
        "Взносы за последние {n} месяцев, сначала ранние (тенге)",
        "Соңғы {n} айдағы жарналар, ерте айлар алдымен (теңге)",
    ),
    "month": ("Month", "Месяц", "Ай"),
    "employer": ("Employer (BIN)", "Работодатель (БИН)", "Жұмыс беруші (БСН)"),
    "income": ("Income", "Доход", "Табыс"),
    "pension_contribution": ("Pension contribution", "Пенсионный взнос", "Зейнетақы жарнасы"),
    "social_contribution": ("Social contribution", "Социальное отчисление", "Әлеуметтік аударым"),
    "employer_pension_contribution": (
        "Employer pension contribution",
        "Пенсионный взнос работодателя",
        "Жұмыс берушінің зейнетақы жарнасы",
    ),
    "total_pension": (
        "Pension contributions in total",
        "Всего пенсионных взносов",
        "Зейнетақы жарналарының барлығы",
    ),
    "savings": (
        "Pension savings now",
        "Пенсионные накопления сейчас",
        "Қазіргі зейнетақы жинақтары",
    ),
    "no_contributions": (
        "No contributions recorded in these months.",
        "За эти месяцы взносов нет.",
        "Осы айларда жарналар жоқ.",
    ),
    "pension_status": ("Pension status", "Статус пенсии", "Зейнетақы мәртебесі"),
    "assignment": ("Pension", "Пенсия", "Зейнетақы"),
    "monthly_amount": ("Per month", "В месяц", "Айына"),
    "effective_from": ("Paid from", "Выплачивается с", "Төленеді"),
    "basis": ("Basis", "Основание", "Негіздеме"),
    "calculation": ("How it was calculated", "Как рассчитано", "Қалай есептелді"),
    "calculation_caption": (
        "Inputs and coefficients of the calculation, in order",
        "Данные и коэффициенты расчёта по порядку",
        "Есептеудің деректері мен коэффициенттері ретімен",
    ),
    "item": ("Item", "Показатель", "Көрсеткіш"),
    "value": ("Value", "Значение", "Мәні"),
    "note": ("Where it comes from", "Откуда", "Қайдан алынды"),
    "explanation": (
        "The calculation in the owner's words (as the registry gives it)",
        "Расчёт словами владельца данных (как его даёт регистр)",
        "Есептеу деректер иесінің сөзімен (тізілім бергендей)",
    ),
    "sources": (
        "Sources the decision read over the bus",
        "Источники, прочитанные через шину",
        "Шешім шина арқылы оқыған көздер",
    ),
    "sources_caption": (
        "Reads the decision rests on",
        "Чтения, на которых основано решение",
        "Шешім негізделген оқулар",
    ),
    "service": ("Service", "Сервис", "Сервис"),
    "fact": ("What was used", "Что использовано", "Не пайдаланылды"),
    "read_at": ("Read at (UTC)", "Прочитано (UTC)", "Оқылған уақыты (UTC)"),
    "benefits_caption": (
        "Your benefits, newest first",
        "Ваши пособия, сначала новые",
        "Сіздің жәрдемақыларыңыз, жаңалары алдымен",
    ),
    "kind": ("Kind", "Вид", "Түрі"),
    "amount": ("Amount (tenge)", "Сумма (тенге)", "Сомасы (теңге)"),
    "frequency": ("How often", "Периодичность", "Жиілігі"),
    "period": ("Period", "Период", "Кезең"),
    "payments": ("Payments", "Выплаты", "Төлемдер"),
    "status_col": ("Status", "Статус", "Мәртебесі"),
    "no_benefits": ("No benefits.", "Пособий нет.", "Жәрдемақылар жоқ."),
    "no_pension_assigned": (
        "No pension is assigned.",
        "Пенсия не назначена.",
        "Зейнетақы тағайындалмаған.",
    ),
    "attachment": ("Clinic attachment", "Прикрепление к поликлинике", "Емханаға тіркелу"),
    "not_attached": (
        "Not attached to any clinic.",
        "Не прикреплён ни к одной поликлинике.",
        "Ешбір емханаға тіркелмеген.",
    ),
    "attach_reason": ("Why", "Причина", "Себебі"),
    "category": ("Category", "Категория", "Санаты"),
    "valid": ("Valid", "Действует", "Жарамды"),
    "conclusions": (
        "Disability conclusions",
        "Заключения об инвалидности",
        "Мүгедектік туралы қорытындылар",
    ),
    "conclusions_caption": (
        "Conclusions of the medical advisory commission",
        "Заключения медико-социальной экспертизы",
        "Медициналық-әлеуметтік сараптама қорытындылары",
    ),
    "conclusion_id": ("Conclusion", "Заключение", "Қорытынды"),
    "group": ("Group", "Группа", "Тобы"),
    "from": ("From", "С", "Бастап"),
    "until": ("Until", "По", "Дейін"),
    "indefinite": ("indefinite", "бессрочно", "мерзімсіз"),
    "decided_on": ("Decided on", "Дата решения", "Шешім күні"),
    "no_conclusions": (
        "No disability conclusions.",
        "Заключений об инвалидности нет.",
        "Мүгедектік туралы қорытындылар жоқ.",
    ),
    "queue_place": ("Kindergarten queue", "Очередь в детский сад", "Балабақша кезегі"),
    "district": ("District", "Район", "Аудан"),
    "queued_on": ("In the queue since", "В очереди с", "Кезекте"),
    "place_in_queue": ("Place", "Место", "Орны"),
    "of_waiting": ("of {n} waiting", "из {n} ожидающих", "(кезекте барлығы {n})"),
    "placed_in": ("Placed in", "Направлен в", "Жолданды"),
    "no_queue": (
        "Not in the kindergarten queue.",
        "Не стоит в очереди в детский сад.",
        "Балабақша кезегінде жоқ.",
    ),
    "enrolments": ("School enrolments", "Зачисления в школу", "Мектепке қабылдау"),
    "enrolments_caption": (
        "School enrolments, newest first",
        "Зачисления, сначала новые",
        "Мектепке қабылдау, жаңалары алдымен",
    ),
    "enrolled_on": ("Enrolled on", "Дата зачисления", "Қабылданған күні"),
    "no_enrolments": ("No school enrolments.", "Зачислений в школу нет.", "Мектепке қабылдау жоқ."),
    "yourself": ("You", "Вы", "Сіз"),
    # Studies at colleges and universities (education's ListStudies).
    "studies": (
        "Studies at colleges and universities",
        "Обучение в колледжах и вузах",
        "Колледждер мен жоғары оқу орындарындағы оқу",
    ),
    "studies_caption": (
        "Studies at colleges and universities, newest first",
        "Обучение в колледжах и вузах, сначала новое",
        "Колледждер мен жоғары оқу орындарындағы оқу, жаңалары алдымен",
    ),
    "institution": ("College or university", "Колледж или вуз", "Колледж немесе жоғары оқу орны"),
    "study_level": ("Level", "Уровень", "Деңгейі"),
    "study_form": ("Form of study", "Форма обучения", "Оқу нысаны"),
    "study_from": ("Admitted on", "Дата зачисления", "Қабылданған күні"),
    "study_until": ("Until", "По", "Дейін"),
    "studying_now": ("studying now", "обучается", "оқып жүр"),
    "no_studies": (
        "No studies at colleges or universities.",
        "Обучения в колледжах и вузах нет.",
        "Колледждер мен жоғары оқу орындарында оқу жоқ.",
    ),
    "level_vocational": (
        "technical and vocational (college)",
        "техническое и профессиональное (колледж)",
        "техникалық және кәсіптік (колледж)",
    ),
    "level_bachelor": ("bachelor's degree", "бакалавриат", "бакалавриат"),
    "level_master": ("master's degree", "магистратура", "магистратура"),
    "level_doctoral": ("doctoral studies", "докторантура", "докторантура"),
    "form_full_time": ("full-time", "очная", "күндізгі"),
    "form_part_time": ("part-time", "заочная", "сырттай"),
    "child_block": (
        "Clinic, insurance, kindergarten and school",
        "Поликлиника, страховка, детский сад и школа",
        "Емхана, сақтандыру, балабақша және мектеп",
    ),
    # actions
    "actions": ("Applications", "Заявления", "Өтініштер"),
    "ask_attachment": (
        "Ask for a clinic attachment",
        "Подать заявку на прикрепление к поликлинике",
        "Емханаға тіркелуге өтініш беру",
    ),
    "change_address": (
        "Report an address change",
        "Сообщить о смене адреса",
        "Мекенжайдың өзгергенін хабарлау",
    ),
    "whom": ("For whom", "Для кого", "Кім үшін"),
    "clinic_choice": (
        "Clinic (of your registered district)",
        "Поликлиника (вашего района регистрации)",
        "Емхана (тіркелген ауданыңыздағы)",
    ),
    "free_places": ("free places", "свободных мест", "бос орын"),
    "campaign_rule": (
        "The clinic must serve the registered district of the person and the "
        "person must be insured; the Ministry of Health checks both.",
        "Поликлиника должна обслуживать район регистрации, а человек должен "
        "быть застрахован; Минздрав проверяет оба условия.",
        "Емхана тіркелген ауданға қызмет көрсетуі және адам сақтандырылған "
        "болуы керек; екеуін де Денсаулық сақтау министрлігі тексереді.",
    ),
    "no_clinics": (
        "No clinics could be listed for your registered district.",
        "Поликлиники вашего района не удалось получить.",
        "Тіркелген ауданыңыздың емханалары алынбады.",
    ),
    "send": ("Send the application", "Отправить заявление", "Өтінішті жіберу"),
    "region": ("Region or city", "Область или город", "Облыс немесе қала"),
    "locality": ("Locality", "Населённый пункт", "Елді мекен"),
    "street": ("Street", "Улица", "Көше"),
    "building": ("Building", "Дом", "Үй"),
    "apartment": ("Apartment (if any)", "Квартира (если есть)", "Пәтер (болса)"),
    "required": ("required", "обязательно", "міндетті"),
    "address_rule": (
        "The Ministry of Justice registers the new address from today; the "
        "clinic and the kindergarten queue follow it by themselves.",
        "Минюст регистрирует новый адрес с сегодняшнего дня; поликлиника и "
        "очередь в детский сад следуют за ним сами.",
        "Әділет министрлігі жаңа мекенжайды бүгіннен бастап тіркейді; емхана "
        "мен балабақша кезегі оған өздері ілеседі.",
    ),
    "result_done": (
        "Done: the owner of the data accepted the application.",
        "Готово: владелец данных принял заявление.",
        "Дайын: деректер иесі өтінішті қабылдады.",
    ),
    "result_refused_by_owner": (
        "Refused by the owner of the data.",
        "Владелец данных отказал.",
        "Деректер иесі бас тартты.",
    ),
    "result_invalid_by_owner": (
        "The owner of the data found the application not valid.",
        "Владелец данных счёл заявление неверным.",
        "Деректер иесі өтінішті жарамсыз деп тапты.",
    ),
    "result_refused": (
        "The bus refused the portal this application.",
        "Шина отказала порталу в этом заявлении.",
        "Шина порталға бұл өтінішті жіберуден бас тартты.",
    ),
    "result_unavailable": (
        "The owner of the data is not answering now; nothing was changed. Try again later.",
        "Владелец данных сейчас не отвечает; ничего не изменено. Попробуйте позже.",
        "Деректер иесі қазір жауап бермейді; ештеңе өзгертілмеді. Кейінірек қайталаңыз.",
    ),
    "owner_reason": (
        "The owner's reason (in the registry's words)",
        "Причина владельца данных (словами регистра)",
        "Деректер иесінің себебі (тізілім сөзімен)",
    ),
    "new_attachment": ("New attachment", "Новое прикрепление", "Жаңа тіркелу"),
    "new_address": (
        "Registered address now",
        "Адрес регистрации теперь",
        "Қазіргі тіркелген мекенжай",
    ),
    "see_updated": (
        "See the updated page",
        "Открыть обновлённую страницу",
        "Жаңартылған бетті ашу",
    ),
    "error_bad_clinic": (
        "Choose a clinic from the list.",
        "Выберите поликлинику из списка.",
        "Тізімнен емхананы таңдаңыз.",
    ),
    "error_bad_address": (
        "The address is not complete or too long: region, locality, street "
        "and building are required, each at most 100 characters.",
        "Адрес неполный или слишком длинный: область, населённый пункт, "
        "улица и дом обязательны, каждое не длиннее 100 знаков.",
        "Мекенжай толық емес немесе тым ұзын: облыс, елді мекен, көше және "
        "үй міндетті, әрқайсысы 100 таңбадан аспайды.",
    ),
    "error_409": (
        "The owner of the data refused.",
        "Владелец данных отказал.",
        "Деректер иесі бас тартты.",
    ),
    # codes of the registries
    "benefit_childbirth_lump_sum": (
        "Lump sum at childbirth",
        "Единовременное пособие на рождение",
        "Бала тууына біржолғы жәрдемақы",
    ),
    "benefit_child_care_allowance": (
        "Childcare allowance (up to 1.5 years)",
        "Пособие по уходу за ребёнком до 1,5 лет",
        "Бала күтіміне жәрдемақы (1,5 жасқа дейін)",
    ),
    "benefit_disability_benefit": (
        "Disability benefit",
        "Пособие по инвалидности",
        "Мүгедектік бойынша жәрдемақы",
    ),
    "benefit_burial_benefit": ("Burial benefit", "Пособие на погребение", "Жерлеуге жәрдемақы"),
    "benefit_burial_savings_payment": (
        "Burial payment from pension savings",
        "Выплата на погребение из пенсионных накоплений",
        "Зейнетақы жинақтарынан жерлеуге төлем",
    ),
    "benefit_carer_of_disabled_child": (
        "Benefit to the parent raising a disabled child",
        "Пособие родителю, воспитывающему ребёнка с инвалидностью",
        "Мүгедек баланы тәрбиелеп отырған ата-анаға жәрдемақы",
    ),
    "bstatus_active": ("active", "действует", "белсенді"),
    "bstatus_completed": ("completed", "завершено", "аяқталды"),
    "bstatus_stopped": ("stopped", "прекращено", "тоқтатылды"),
    "bstatus_superseded": (
        "replaced by a newer decision",
        "заменено новым решением",
        "жаңа шешіммен ауыстырылды",
    ),
    "freq_monthly": ("monthly", "ежемесячно", "ай сайын"),
    "freq_one_off": ("once", "единовременно", "біржолғы"),
    "pay_scheduled": ("scheduled", "запланирована", "жоспарланған"),
    "pay_paid": ("paid", "выплачена", "төленді"),
    "pay_stopped": ("stopped", "прекращена", "тоқтатылды"),
    "pay_kind_arrears": ("arrears, paid once", "доплата, единовременно",
                         "қосымша төлем, біржолғы"),
    "recalculations_caption": ("Recalculations", "Перерасчёты", "Қайта есептеулер"),
    "recalc_decided_on": ("Decided on", "Дата решения", "Шешім күні"),
    "recalc_amounts": ("Monthly amount: before → after", "Сумма в месяц: было → стало",
                       "Айлық сома: бұрын → кейін"),
    "recalc_from": ("from", "с", "бастап"),
    "recalc_reason": ("Reason", "Основание", "Негіздеме"),
    "recalc_rules": ("Rules changed and sources", "Изменённые правила и источники",
                     "Өзгерген ережелер және дереккөздер"),
    "recalc_in_force_from": ("in force from", "действует с", "күшіне енген күні"),
    "recalc_arrears": ("Arrears", "Доплата за прошлые месяцы", "Өткен айлар үшін қосымша төлем"),
    "recalc_paid_in": ("paid in", "выплачивается в", "төленетін айы"),
    "pkind_age": ("Age pension", "Пенсия по возрасту", "Жасына байланысты зейнетақы"),
    "pkind_disability": (
        "Disability pension",
        "Пенсия по инвалидности",
        "Мүгедектік бойынша зейнетақы",
    ),
    "pkind_survivor": (
        "Survivor's pension",
        "Пенсия по потере кормильца",
        "Асыраушысынан айырылу бойынша зейнетақы",
    ),
    "unit_KZT": ("tenge", "тенге", "теңге"),
    "unit_MCI": ("MCI", "МРП", "АЕК"),
    "unit_years": ("years", "лет", "жыл"),
    "unit_months": ("months", "месяцев", "ай"),
    "unit_share": ("share", "доля", "үлес"),
    "ins_state_paid": ("paid by the state", "за счёт государства", "мемлекет есебінен"),
    "ins_contributions": ("through contributions", "за счёт взносов", "жарналар есебінен"),
    "soc_child_under_1": ("child under one year", "ребёнок до года", "бір жасқа дейінгі бала"),
    "soc_preschool_child": (
        "preschool child",
        "ребёнок дошкольного возраста",
        "мектепке дейінгі бала",
    ),
    "soc_pupil": ("pupil", "школьник", "оқушы"),
    "soc_student": ("full-time student", "студент очной формы", "күндізгі бөлім студенті"),
    "soc_conscript": ("conscript", "военнослужащий срочной службы", "мерзімді әскери қызметші"),
    "soc_disabled_group_1_2": (
        "disability of group 1 or 2",
        "инвалидность 1 или 2 группы",
        "1 немесе 2 топтағы мүгедектік",
    ),
    "soc_disabled_group_3": (
        "disability of group 3",
        "инвалидность 3 группы",
        "3 топтағы мүгедектік",
    ),
    "soc_parent_on_leave": (
        "parent on childcare leave",
        "родитель в отпуске по уходу",
        "бала күтімі демалысындағы ата-ана",
    ),
    "soc_pregnant": ("pregnant woman", "беременная", "жүкті әйел"),
    "soc_unemployed": (
        "registered unemployed",
        "зарегистрированный безработный",
        "тіркелген жұмыссыз",
    ),
    "soc_targeted_assistance": (
        "targeted social assistance",
        "адресная социальная помощь",
        "атаулы әлеуметтік көмек",
    ),
    "soc_pensioner": ("age pensioner", "пенсионер по возрасту", "жасына байланысты зейнеткер"),
    "soc_mother_of_many": ("mother of many children", "многодетная мать", "көп балалы ана"),
    "soc_carer_of_disabled_child": (
        "parent caring for a disabled child",
        "родитель, ухаживающий за ребёнком с инвалидностью",
        "мүгедек баланы күтетін ата-ана",
    ),
    "soc_war_veteran": ("war veteran", "ветеран войны", "соғыс ардагері"),
    "soc_disabled_child": ("child with a disability", "ребёнок с инвалидностью", "мүгедек бала"),
    "soc_non_working_parent_child_under_3": (
        "non-working parent of a child under three",
        "неработающий родитель ребёнка до трёх лет",
        "үш жасқа толмаған баланың жұмыс істемейтін ата-анасы",
    ),
    "soc_carer_of_disabled_group_1": (
        "non-working carer of a person with a group-1 disability",
        "неработающее лицо, ухаживающее за лицом с инвалидностью первой группы",
        "бірінші топтағы мүгедектігі бар адамға күтім жасайтын жұмыс істемейтін адам",
    ),
    "soc_non_working_kandas": (
        "non-working kandas",
        "неработающий кандас",
        "жұмыс істемейтін қандас",
    ),
    "soc_non_working_house_arrest": (
        "non-working, under house arrest",
        "неработающий, находящийся под домашним арестом",
        "үй қамауындағы жұмыс істемейтін адам",
    ),
    "soc_prisoner": ("serving a sentence", "отбывающий наказание", "жаза өтеуші"),
    "soc_detainee": (
        "held in pre-trial detention",
        "содержащийся в следственном изоляторе",
        "тергеу изоляторында ұсталатын адам",
    ),
    "reason_request": ("on request", "по заявлению", "өтініш бойынша"),
    "reason_newborn": ("at birth", "при рождении", "туған кезде"),
    "reason_address_change": ("after a move", "после переезда", "көшкеннен кейін"),
    # The place whose district the clinic serves (health's Attachment.basis).
    "attach_basis": ("Attached by", "Основание прикрепления", "Тіркелу негізі"),
    "basis_registered_address": (
        "place of permanent registration",
        "место постоянной регистрации",
        "тұрақты тіркелген жері",
    ),
    "basis_temporary_address": (
        "place of temporary registration",
        "место временной регистрации",
        "уақытша тіркелген жері",
    ),
    "basis_school": ("place of study: school", "место учёбы: школа", "оқу орны: мектеп"),
    "basis_workplace": ("place of work", "место работы", "жұмыс орны"),
    "basis_college_or_university": (
        "place of study: college or university",
        "место учёбы: колледж или вуз",
        "оқу орны: колледж немесе жоғары оқу орны",
    ),
    "basis_unknown": (
        "not recorded (counted as the place of permanent registration)",
        "не записано (считается местом постоянной регистрации)",
        "жазылмаған (тұрақты тіркелген жері деп есептеледі)",
    ),
    "queue_1": ("waiting", "ожидает", "күтуде"),
    "queue_2": ("placed", "направлен", "жолданды"),
    "queue_3": ("withdrawn", "снят с очереди", "кезектен шығарылды"),
    "enrol_1": ("studying", "обучается", "оқиды"),
    "enrol_2": ("transferred", "переведён", "ауыстырылды"),
    "enrol_3": ("left", "выбыл", "шықты"),
    # A minor child's own pages and the applications for a minor child.
    "child_pages": ("The child's pages", "Страницы ребёнка", "Баланың беттері"),
    "about_child": ("About your child", "О вашем ребёнке", "Балаңыз туралы"),
    "ask_kindergarten": (
        "Ask for a kindergarten place",
        "Встать в очередь в детский сад",
        "Балабақша кезегіне тұру",
    ),
    "ask_school": ("Enrol in a school", "Зачислить в школу", "Мектепке қабылдау"),
    "child_choice": ("Child", "Ребёнок", "Бала"),
    "grade_choice": ("Grade", "Класс", "Сынып"),
    "preferred_kindergarten": (
        "Preferred kindergarten",
        "Желаемый детский сад",
        "Қалаған балабақша",
    ),
    "any_kindergarten": (
        "Any kindergarten of the child's district",
        "Любой детский сад района ребёнка",
        "Бала ауданының кез келген балабақшасы",
    ),
    "school_year": ("School year from", "Учебный год с", "Оқу жылы басталуы"),
    "kindergarten_rule": (
        "The Ministry of Education queues children under 6 (until the sixth birthday) in"
        " the district where they are registered; the date of the application is their"
        " seniority. A child at school is not queued.",
        "Министерство просвещения ставит в очередь детей до 6 лет (до шестилетия) в"
        " районе их регистрации; очерёдность — по дате заявления. Школьника в очередь не"
        " ставят.",
        "Оқу-ағарту министрлігі 6 жасқа дейінгі балаларды тіркелген ауданында"
        " кезекке қояды; кезектілік — өтініш күні бойынша. Мектеп оқушысы кезекке"
        " қойылмайды.",
    ),
    "school_rule": (
        "A child enters grade 1 at 6 or 7 years old on 1 September (each later grade a"
        " year older); applications for the next school year open on 1 April; the school"
        " must have a free place.",
        "В 1 класс принимают детей, которым 1 сентября 6 или 7 лет (в следующие классы —"
        " на год старше); приём на следующий учебный год с 1 апреля; в школе должно быть"
        " свободное место.",
        "1-сыныпқа 1 қыркүйекте 6 немесе 7 жасқа толған балалар қабылданады (келесі"
        " сыныптарға — бір жас үлкен); келесі оқу жылына қабылдау 1 сәуірден басталады;"
        " мектепте бос орын болуы керек.",
    ),
    "no_minor_children": (
        "The population registry names no child of yours under 18: this application is"
        " made for a minor child.",
        "В регистре населения нет ваших детей до 18 лет: это заявление подают за"
        " несовершеннолетнего ребёнка.",
        "Халық тізілімінде 18 жасқа толмаған балаңыз жоқ: бұл өтініш кәмелетке толмаған"
        " бала үшін беріледі.",
    ),
    "no_schools": (
        "Education has no school in your children's districts.",
        "В районах ваших детей нет школ.",
        "Балаларыңыздың аудандарында мектеп жоқ.",
    ),
    "places_unavailable": (
        "The list of kindergartens and schools could not be read now: they are shown by"
        " their number.",
        "Список детских садов и школ сейчас не прочитан: они показаны по номеру.",
        "Балабақшалар мен мектептер тізімі қазір оқылмады: олар нөмірімен көрсетілген.",
    ),
    "error_bad_kindergarten": (
        "Choose a kindergarten from the list (or any).",
        "Выберите детский сад из списка (или любой).",
        "Тізімнен балабақшаны таңдаңыз (немесе кез келгенін).",
    ),
    "error_bad_school": (
        "Choose a school from the list.",
        "Выберите школу из списка.",
        "Тізімнен мектепті таңдаңыз.",
    ),
    "error_bad_grade": (
        "The grade must be a number from 1 to 11.",
        "Класс — число от 1 до 11.",
        "Сынып — 1-ден 11-ге дейінгі сан.",
    ),
    # The owner's refusals, by the status it gives (its own words are shown too).
    "refusal_kindergarten_already_exists": (
        "The child already has a place in the kindergarten queue or in a kindergarten.",
        "Ребёнок уже стоит в очереди в детский сад или уже направлен в детский сад.",
        "Бала балабақша кезегінде тұр немесе балабақшаға жолданған.",
    ),
    "refusal_kindergarten_failed_precondition": (
        "The queue's rules are not met: the child's age (under 6), a registered address in"
        " a district the ministry serves, not at school, alive.",
        "Не выполнены правила очереди: возраст ребёнка (до 6 лет), регистрация в"
        " обслуживаемом районе, ребёнок не учится в школе.",
        "Кезек ережелері орындалмады: баланың жасы (6 жасқа дейін), қызмет"
        " көрсетілетін аудандағы тіркеу, бала мектепте оқымайды.",
    ),
    "refusal_kindergarten_not_found": (
        "The ministry does not know this kindergarten, or the population registry does"
        " not know the child.",
        "Министерство не знает этот детский сад, или ребёнка нет в регистре населения.",
        "Министрлік бұл балабақшаны білмейді немесе бала халық тізілімінде жоқ.",
    ),
    "refusal_school_already_exists": (
        "The child is already enrolled in this school.",
        "Ребёнок уже зачислен в эту школу.",
        "Бала бұл мектепке қабылданып қойған.",
    ),
    "refusal_school_failed_precondition": (
        "The school's rules are not met: the child's age on 1 September for this grade,"
        " a registered address, a free place in the school.",
        "Не выполнены правила приёма: возраст ребёнка на 1 сентября для этого класса,"
        " регистрация по месту жительства, свободное место в школе.",
        "Қабылдау ережелері орындалмады: осы сынып үшін баланың 1 қыркүйектегі жасы,"
        " тұрғылықты жері бойынша тіркеу, мектептегі бос орын.",
    ),
    "refusal_school_not_found": (
        "The ministry does not know this school, or the population registry does not know"
        " the child.",
        "Министерство не знает эту школу, или ребёнка нет в регистре населения.",
        "Министрлік бұл мектепті білмейді немесе бала халық тізілімінде жоқ.",
    ),
    # Withdrawing a minor child from the kindergarten queue.
    "withdraw_queue": (
        "Withdraw from the kindergarten queue",
        "Снять с очереди в детский сад",
        "Балабақша кезегінен шығару",
    ),
    "withdraw_warning": (
        "The child loses this place in the queue and its seniority; asked for again"
        " later, the child is queued from that day.",
        "Ребёнок потеряет место в очереди и свою очерёдность; при новом заявлении"
        " очередь считается с его даты.",
        "Бала кезектегі орнынан және кезектілігінен айырылады; кейін қайта өтініш"
        " берілсе, кезек сол күннен есептеледі.",
    ),
    "withdraw_confirm": (
        "Yes, withdraw the child from the queue",
        "Да, снять ребёнка с очереди",
        "Иә, баланы кезектен шығару",
    ),
    "withdraw_cancel": (
        "No, keep the place in the queue",
        "Нет, сохранить место в очереди",
        "Жоқ, кезектегі орынды сақтау",
    ),
    "withdraw_nothing": (
        "The child has no place in the kindergarten queue to withdraw.",
        "У ребёнка нет места в очереди в детский сад, с которого можно снять.",
        "Баланың балабақша кезегінде шығаратын орны жоқ.",
    ),
    "back_child_education": (
        "Back to the child's education page",
        "Назад к странице образования ребёнка",
        "Баланың білім бетіне оралу",
    ),
    "withdrawn_on": ("Withdrawn on", "Снят с очереди", "Кезектен шығарылған күні"),
    "refusal_withdraw_not_found": (
        "The child has no place in the kindergarten queue to withdraw (never queued, or"
        " already withdrawn).",
        "У ребёнка нет места в очереди в детский сад (не стоял в очереди или уже снят).",
        "Баланың балабақша кезегінде орны жоқ (кезекке тұрмаған немесе бұрын шығарылған).",
    ),
    "refusal_school_invalid_argument": (
        "The ministry did not accept the grade.",
        "Министерство не приняло указанный класс.",
        "Министрлік көрсетілген сыныпты қабылдамады.",
    ),
}

PAGES_TEXTS: dict[str, dict[str, str]] = {
    lang: {key: texts[i] for key, texts in _TEXTS.items()}
    for i, lang in enumerate(("en", "ru", "kk"))
}
