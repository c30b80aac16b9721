"""Readable names of the services' methods and event topics on "who used my data", in
Kazakh, Russian and English: the four registries' methods, the bus metaservices and
the events the registries publish. A method or topic not listed here (a new agency's)
is shown as its raw gRPC name, marked as English (``service_name`` gives None)."""

from __future__ import annotations

from collections.abc import Mapping

from zhol.portal.i18n import text

_POP = "zhol.population.v1.PopulationRegistry/"
_PEN = "zhol.pension.v1.PensionRegistry/"
_HEA = "zhol.health.v1.HealthRegistry/"
_EDU = "zhol.education.v1.EducationRegistry/"

# (method as "grpc service/Method", or an event's topic), English, Russian, Kazakh.
_NAMES: tuple[tuple[str, str, str, str], ...] = (
    (_POP + "GetPerson", "Personal data (name, birth date, address)",
     "Персональные данные (ФИО, дата рождения, адрес)",
     "Жеке деректер (аты-жөні, туған күні, мекенжайы)"),
    (_POP + "ListPersons", "List of persons", "Список лиц", "Тұлғалар тізімі"),
    (_POP + "GetAddress", "Registered address", "Адрес регистрации", "Тіркелген мекенжайы"),
    (_POP + "GetFamily", "Family (parents, spouse, children)",
     "Семья (родители, супруг(а), дети)", "Отбасы (ата-анасы, жұбайы, балалары)"),
    (_POP + "RegisterBirth", "Birth registration", "Регистрация рождения", "Туылуды тіркеу"),
    (_POP + "RegisterDeath", "Death registration", "Регистрация смерти",
     "Қайтыс болуды тіркеу"),
    (_POP + "ChangeAddress", "Change of registered address", "Изменение адреса регистрации",
     "Тіркелген мекенжайды өзгерту"),
    (_POP + "ChangeName", "Change of name", "Изменение ФИО", "Аты-жөнін өзгерту"),
    (_PEN + "GetContributions", "Pension contributions", "Пенсионные взносы",
     "Зейнетақы жарналары"),
    (_PEN + "RecordContribution", "Recording a pension contribution",
     "Учёт пенсионного взноса", "Зейнетақы жарнасын есепке алу"),
    (_PEN + "GetEmploymentPeriods", "Employment periods", "Периоды трудовой деятельности",
     "Еңбек қызметі кезеңдері"),
    (_PEN + "GetPensionStatus", "Pension status", "Сведения о пенсии",
     "Зейнетақы туралы мәліметтер"),
    (_PEN + "ListBenefits", "Benefits and their payments", "Пособия и их выплаты",
     "Жәрдемақылар және олардың төлемдері"),
    (_PEN + "AssignRetirementPensions", "Assignment of age pensions",
     "Назначение пенсий по возрасту", "Жасына байланысты зейнетақы тағайындау"),
    (_PEN + "IsInsuredByContributions", "Check of insurance by contributions",
     "Проверка страхования по взносам", "Жарналар бойынша сақтандыруды тексеру"),
    (_HEA + "ListClinics", "List of clinics", "Список поликлиник", "Емханалар тізімі"),
    (_HEA + "GetAttachment", "Current clinic attachment", "Текущее прикрепление к поликлинике",
     "Емханаға қазіргі тіркелуі"),
    (_HEA + "ListAttachments", "History of clinic attachments",
     "История прикреплений к поликлиникам", "Емханаға тіркелу тарихы"),
    (_HEA + "AttachToClinic", "Attaching to a clinic", "Прикрепление к поликлинике",
     "Емханаға тіркеу"),
    (_HEA + "GetInsuranceStatus", "Health insurance status", "Статус медицинского страхования",
     "Медициналық сақтандыру мәртебесі"),
    (_HEA + "RecordDisabilityConclusion", "Recording a disability conclusion",
     "Регистрация заключения об инвалидности", "Мүгедектік туралы қорытындыны тіркеу"),
    (_HEA + "ListDisabilityConclusions", "Disability conclusions",
     "Заключения об инвалидности", "Мүгедектік туралы қорытындылар"),
    (_HEA + "RecordStateInsuredGround", "Recording a ground of state-paid health insurance",
     "Регистрация основания для взносов ОСМС за счёт государства",
     "Мемлекет есебінен МӘМС жарнасы негізін тіркеу"),
    (_HEA + "EndStateInsuredGround", "Ending a ground of state-paid health insurance",
     "Прекращение основания для взносов ОСМС за счёт государства",
     "Мемлекет есебінен МӘМС жарнасы негізін тоқтату"),
    (_HEA + "ListStateInsuredGrounds", "Grounds of state-paid health insurance",
     "Основания для взносов ОСМС за счёт государства",
     "Мемлекет есебінен МӘМС жарнасы негіздері"),
    (_EDU + "ListKindergartens", "List of kindergartens", "Список детских садов",
     "Балабақшалар тізімі"),
    (_EDU + "ListSchools", "List of schools", "Список школ", "Мектептер тізімі"),
    (_EDU + "GetQueuePosition", "Place in the kindergarten queue",
     "Место в очереди в детский сад", "Балабақшаға кезектегі орны"),
    (_EDU + "EnqueueForKindergarten", "Registration in the kindergarten queue",
     "Постановка в очередь в детский сад", "Балабақшаға кезекке қою"),
    (_EDU + "WithdrawFromQueue", "Withdrawal from the kindergarten queue",
     "Снятие с очереди в детский сад", "Балабақша кезегінен шығару"),
    (_EDU + "PlaceInKindergarten", "Place given in a kindergarten",
     "Направление в детский сад", "Балабақшаға жолдама беру"),
    (_EDU + "EnrollInSchool", "School enrolment", "Зачисление в школу", "Мектепке қабылдау"),
    (_EDU + "ListEnrolments", "School enrolments", "Сведения о зачислении в школы",
     "Мектепке қабылдау туралы мәліметтер"),
    (_EDU + "ListInstitutions", "List of colleges and universities", "Список колледжей и вузов",
     "Колледждер мен жоғары оқу орындарының тізімі"),
    (_EDU + "RecordStudy", "Admission to a college or university",
     "Зачисление в колледж или вуз", "Колледжге немесе жоғары оқу орнына қабылдау"),
    (_EDU + "EndStudy", "End of studies at a college or university",
     "Окончание обучения в колледже или вузе",
     "Колледжде немесе жоғары оқу орнында оқуды аяқтау"),
    (_EDU + "ListStudies", "Studies at colleges and universities",
     "Сведения об обучении в колледжах и вузах",
     "Колледждер мен жоғары оқу орындарында оқу туралы мәліметтер"),
    ("zhol.bus.v1.Usage/FindUsage", "Query of a gateway's log: who used my data",
     "Запрос к журналу шлюза: кто использовал мои данные",
     "Шлюз журналына сұрау: деректерімді кім пайдаланды"),
    ("zhol.bus.v1.Usage/GetEvidence", "Evidence of a use of my data from a gateway's log",
     "Доказательство использования моих данных из журнала шлюза",
     "Шлюз журналынан деректерімді пайдаланудың дәлелі"),
    ("zhol.bus.v1.Discovery/ListMembers", "List of the federation's members and services",
     "Список участников федерации и их сервисов",
     "Федерация қатысушылары мен олардың сервистерінің тізімі"),
    ("zhol.bus.v1.Discovery/ListMethods", "List of a system's service methods",
     "Список методов сервисов системы", "Жүйе сервистері әдістерінің тізімі"),
    ("zhol.bus.v1.Discovery/AllowedMethods", "Methods a system may call at another",
     "Методы, которые системе разрешено вызывать у другой",
     "Жүйеге басқа жүйеден шақыруға рұқсат етілген әдістер"),
    ("zhol.bus.v1.Events/Publish", "Publishing an event", "Публикация события",
     "Оқиғаны жариялау"),
    ("zhol.population.v1.BirthRegistered", "Event: birth registered",
     "Событие: зарегистрировано рождение", "Оқиға: туылу тіркелді"),
    ("zhol.population.v1.DeathRegistered", "Event: death registered",
     "Событие: зарегистрирована смерть", "Оқиға: қайтыс болу тіркелді"),
    ("zhol.population.v1.AddressChanged", "Event: registered address changed",
     "Событие: изменён адрес регистрации", "Оқиға: тіркелген мекенжай өзгерді"),
    ("zhol.pension.v1.BenefitAssigned", "Event: benefit assigned",
     "Событие: назначено пособие", "Оқиға: жәрдемақы тағайындалды"),
    ("zhol.pension.v1.PensionAssigned", "Event: pension assigned",
     "Событие: назначена пенсия", "Оқиға: зейнетақы тағайындалды"),
    ("zhol.pension.v1.PaymentsStopped", "Event: payments stopped",
     "Событие: выплаты прекращены", "Оқиға: төлемдер тоқтатылды"),
    ("zhol.pension.v1.BenefitRecalculated", "Event: benefit recalculated",
     "Событие: пособие пересчитано", "Оқиға: жәрдемақы қайта есептелді"),
    ("zhol.health.v1.DisabilityEstablished", "Event: disability established",
     "Событие: установлена инвалидность", "Оқиға: мүгедектік белгіленді"),
    ("zhol.health.v1.ClinicAttached", "Event: attached to a clinic",
     "Событие: прикрепление к поликлинике", "Оқиға: емханаға тіркелді"),
    ("zhol.health.v1.AttachmentClosed", "Event: clinic attachment closed",
     "Событие: прикрепление к поликлинике закрыто", "Оқиға: емханаға тіркелу жабылды"),
    ("zhol.education.v1.QueuedForKindergarten", "Event: queued for a kindergarten",
     "Событие: постановка в очередь в детский сад", "Оқиға: балабақшаға кезекке қойылды"),
    ("zhol.education.v1.QueueEntryMoved", "Event: kindergarten queue place moved",
     "Событие: место в очереди в детский сад перенесено",
     "Оқиға: балабақша кезегіндегі орны ауыстырылды"),
    ("zhol.education.v1.EnrolledInSchool", "Event: enrolled in a school",
     "Событие: зачисление в школу", "Оқиға: мектепке қабылданды"),
    ("zhol.education.v1.PlacedInKindergarten", "Event: place given in a kindergarten",
     "Событие: выделено место в детском саду", "Оқиға: балабақшадан орын берілді"),
)  # fmt: skip

SERVICE_NAMES: dict[str, dict[str, str]] = {
    "en": {key: en for key, en, _, _ in _NAMES},
    "ru": {key: ru for key, _, ru, _ in _NAMES},
    "kk": {key: kk for key, _, _, kk in _NAMES},
}


def service_key(grpc_service: str, method: str) -> str:
    """How a usage entry names what was used: "service/Method", or an event's topic."""
    return f"{grpc_service}/{method}" if method and method != grpc_service else grpc_service


def service_name(lang: str, grpc_service: str, method: str) -> str | None:
    """The readable name in ``lang``, or None for a method or topic not listed."""
    return SERVICE_NAMES.get(lang, SERVICE_NAMES["en"]).get(service_key(grpc_service, method))


def agency_label(lang: str, member: str, registered: Mapping[str, str]) -> tuple[str, str]:
    """A member's name in ``lang`` and "", or, for a member the portal has no name for
    (one that joined later), its registered name (``registered``, else its id) and "en"."""
    name = text(lang, member)
    return (name, "") if name != member else (registered.get(member, member), "en")
