"""The evidence download's texts ("who used my data"), in Kazakh, Russian and English;
zhol.portal.i18n adds them to its catalogues."""

from __future__ import annotations

EVIDENCE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "usage_evidence": "Evidence",
        "evidence_download": "Download the evidence",
        "evidence_help": "Each gateway's record of an entry can be downloaded as an evidence "
        "file: the signed messages with proof that they are in the gateway's log. You or "
        "your lawyer can check it on any computer with zhol audit verify.",
        "evidence_not_found": "This gateway has no record of that entry about you.",
        "evidence_not_ready": "The evidence of this entry is not sealed yet: the gateway "
        "seals its log every few minutes. Try again in a few minutes.",
        "evidence_unavailable": "The evidence could not be obtained from this gateway now. "
        "Try again later.",
    },
    "ru": {
        "usage_evidence": "Доказательство",
        "evidence_download": "Скачать доказательство",
        "evidence_help": "Запись каждого шлюза об использовании можно скачать файлом-"
        "доказательством: подписанные сообщения с доказательством того, что они есть в "
        "журнале шлюза. Вы или ваш юрист можете проверить его на любом компьютере командой "
        "zhol audit verify.",
        "evidence_not_found": "У этого шлюза нет записи об этом использовании ваших данных.",
        "evidence_not_ready": "Доказательство этой записи ещё не заверено: шлюз заверяет "
        "свой журнал каждые несколько минут. Попробуйте снова через несколько минут.",
        "evidence_unavailable": "Сейчас не удалось получить доказательство у этого шлюза. "
        "Попробуйте позже.",
    },
    "kk": {
        "usage_evidence": "Дәлел",
        "evidence_download": "Дәлелді жүктеп алу",
        "evidence_help": "Әр шлюздің пайдалану туралы жазбасын дәлел файлы ретінде жүктеп "
        "алуға болады: қол қойылған хабарламалар және олардың шлюз журналында бар екенінің "
        "дәлелі. Оны сіз немесе заңгеріңіз кез келген компьютерде zhol audit verify "
        "командасымен тексере алады.",
        "evidence_not_found": "Бұл шлюзде сіз туралы мұндай жазба жоқ.",
        "evidence_not_ready": "Бұл жазбаның дәлелі әлі расталмаған: шлюз өз журналын бірнеше "
        "минут сайын растайды. Бірнеше минуттан кейін қайталап көріңіз.",
        "evidence_unavailable": "Қазір бұл шлюздан дәлелді алу мүмкін болмады. Кейінірек "
        "қайталап көріңіз.",
    },
}
