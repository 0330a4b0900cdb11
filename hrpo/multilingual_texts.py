"""The wording of the `multi` task (hrpo/multilingual_problems.py): each question form of hrpo/word_problems.py
written in the eleven MGSM languages, two templates per form and language.  Data only: slots, agreement marks
and the split are explained where they are used.
Test: pytest tests/test_multilingual_problems.py
"""
# language -> form -> (template 0, template 1).  Slots: {x}, {y} names; the numbers of the form's draws; {f}
# the fraction word ({F} capitalised).
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "change": ("{x} has {a} stickers. {y} gives {x} {b} more. How many stickers does {x} have now?",
                   "A baker makes {a} cookies and sells {b} of them. How many cookies are left?"),
        "compare": ("{x} has {a} marbles and {y} has {b}. How many more marbles does {x} have than {y}?",
                    "{x} reads {a} pages. {y} reads {b} pages more than {x}. How many pages does {y} read?"),
        "combine": ("{x} picks {a} apples and {y} picks {b} apples. How many apples do they pick together?",
                    "A class has {a} girls and {b} boys. How many children are in the class?"),
        "groups": ("There are {a} boxes with {k} pencils in each box. How many pencils are there in all?",
                   "A bus drives {v} km every hour. How many km does it drive in {h} hours?"),
        "times": ("{x} has {a} cards. {y} has {k} times as many cards. How many cards does {y} have?",
                  "{y} has {p} cards. That is {k} times as many as {x} has. How many cards does {x} have?"),
        "share": ("{p} cookies are shared equally among {k} children. How many cookies does each child get?",
                  "{x} puts {p} eggs into boxes of {k} eggs each. How many boxes does {x} fill?"),
        "fraction": ("{x} has {p} balloons. {F} of them are red. How many red balloons does {x} have?",
                     "{x} has {p} dollars and spends {f} of the money. How many dollars does {x} spend?"),
        "twostep": ("{x} buys {a} packs of pencils with {b} pencils in each pack and gives away {c} pencils. "
                    "How many pencils does {x} have left?",
                    "{x} earns {a} dollars on Monday and {b} dollars on Tuesday, then spends {c} dollars. How many "
                    "dollars does {x} have now?"),
        "money": ("A notebook costs {p} dollars. {x} buys {k} notebooks and pays with {m} dollars. How many "
                  "dollars of change does {x} get?",
                  "{x} has {a} dollars and buys a ball for {b} dollars. How many dollars does {x} have left?"),
        "time": ("A film lasts {a} minutes. {x} has watched {b} minutes of it. How many minutes are left?",
                 "{x} practises the piano for {a} minutes every day. How many minutes is that in {k} days?"),
        "ages": ("{x} is {a} years old. How old was {x} {n} years ago?",
                 "{x} is {a} years old. {x}'s grandfather is {k} times as old. How old is the grandfather?"),
    },
    "de": {
        "change": ("{x} hat {a} Sticker. {y} schenkt {x} noch {b} dazu. Wie viele Sticker hat {x} jetzt?",
                   "Ein Bäcker backt {a} Kekse und verkauft {b} davon. Wie viele Kekse sind übrig?"),
        "compare": ("{x} hat {a} Murmeln und {y} hat {b}. Wie viele Murmeln hat {x} mehr als {y}?",
                    "{x} liest {a} Seiten. {y} liest {b} Seiten mehr als {x}. Wie viele Seiten liest {y}?"),
        "combine": ("{x} pflückt {a} Äpfel und {y} pflückt {b} Äpfel. Wie viele Äpfel pflücken sie zusammen?",
                    "In einer Klasse sind {a} Mädchen und {b} Jungen. Wie viele Kinder sind in der Klasse?"),
        "groups": ("Es gibt {a} Schachteln mit je {k} Stiften. Wie viele Stifte sind das insgesamt?",
                   "Ein Bus fährt {v} km pro Stunde. Wie viele km fährt er in {h} Stunden?"),
        "times": ("{x} hat {a} Karten. {y} hat {k}-mal so viele Karten. Wie viele Karten hat {y}?",
                  "{y} hat {p} Karten. Das sind {k}-mal so viele, wie {x} hat. Wie viele Karten hat {x}?"),
        "share": ("{p} Kekse werden gerecht unter {k} Kindern verteilt. Wie viele Kekse bekommt jedes Kind?",
                  "{x} legt {p} Eier in Schachteln zu je {k} Eiern. Wie viele Schachteln füllt {x}?"),
        "fraction": ("{x} hat {p} Luftballons. {F} davon ist rot. Wie viele rote Luftballons hat {x}?",
                     "{x} hat {p} Euro und gibt {f} des Geldes aus. Wie viele Euro gibt {x} aus?"),
        "twostep": ("{x} kauft {a} Packungen mit je {b} Stiften und verschenkt {c} Stifte. Wie viele Stifte hat "
                    "{x} noch?",
                    "{x} verdient am Montag {a} Euro und am Dienstag {b} Euro und gibt dann {c} Euro aus. Wie viele "
                    "Euro hat {x} jetzt?"),
        "money": ("Ein Heft kostet {p} Euro. {x} kauft {k} Hefte und bezahlt mit {m} Euro. Wie viel Euro "
                  "Wechselgeld bekommt {x}?",
                  "{x} hat {a} Euro und kauft einen Ball für {b} Euro. Wie viele Euro hat {x} noch?"),
        "time": ("Ein Film dauert {a} Minuten. {x} hat schon {b} Minuten gesehen. Wie viele Minuten fehlen noch?",
                 "{x} übt jeden Tag {a} Minuten Klavier. Wie viele Minuten sind das in {k} Tagen?"),
        "ages": ("{x} ist {a} Jahre alt. Wie alt war {x} vor {n} Jahren?",
                 "{x} ist {a} Jahre alt. Der Großvater von {x} ist {k}-mal so alt. Wie alt ist der Großvater?"),
    },
    "fr": {
        "change": ("{x} a {a} autocollants. {y} lui en donne {b} de plus. Combien d'autocollants a {x} maintenant ?",
                   "Un boulanger fait {a} biscuits et en vend {b}. Combien de biscuits reste-t-il ?"),
        "compare": ("{x} a {a} billes et {y} en a {b}. Combien de billes a {x} de plus que {y} ?",
                    "{x} lit {a} pages. {y} lit {b} pages de plus que {x}. Combien de pages lit {y} ?"),
        "combine": ("{x} cueille {a} pommes et {y} cueille {b} pommes. Combien de pommes ont-ils cueillies en tout ?",
                    "Une classe compte {a} filles et {b} garçons. Combien d'enfants y a-t-il dans la classe ?"),
        "groups": ("Il y a {a} boîtes de {k} crayons chacune. Combien de crayons y a-t-il en tout ?",
                   "Un bus roule {v} km par heure. Combien de km parcourt-il en {h} heures ?"),
        "times": ("{x} a {a} cartes. {y} a {k} fois plus de cartes. Combien de cartes a {y} ?",
                  "{y} a {p} cartes, soit {k} fois plus que {x}. Combien de cartes a {x} ?"),
        "share": ("On partage {p} biscuits également entre {k} enfants. Combien de biscuits chaque enfant "
                  "reçoit-il ?",
                  "{x} range {p} œufs dans des boîtes de {k} œufs. Combien de boîtes remplit {x} ?"),
        "fraction": ("{x} a {p} ballons. {F} des ballons sont rouges. Combien de ballons rouges a {x} ?",
                     "{x} a {p} euros et dépense {f} de son argent. Combien d'euros dépense {x} ?"),
        "twostep": ("{x} achète {a} paquets de {b} crayons et en donne {c}. Combien de crayons lui reste-t-il ?",
                    "{x} gagne {a} euros lundi et {b} euros mardi, puis dépense {c} euros. Combien d'euros a {x} "
                    "maintenant ?"),
        "money": ("Un cahier coûte {p} euros. {x} achète {k} cahiers et paie avec {m} euros. Combien d'euros "
                  "lui rend-on ?",
                  "{x} a {a} euros et achète un ballon à {b} euros. Combien d'euros lui reste-t-il ?"),
        "time": ("Un film dure {a} minutes. {x} en a déjà regardé {b} minutes. Combien de minutes reste-t-il ?",
                 "{x} joue du piano {a} minutes par jour. Combien de minutes cela fait-il en {k} jours ?"),
        "ages": ("{x} a {a} ans. Quel âge avait {x} il y a {n} ans ?",
                 "{x} a {a} ans. Son grand-père a {k} fois son âge. Quel âge a le grand-père ?"),
    },
    "es": {
        "change": ("{x} tiene {a} pegatinas. {y} le da {b} más. ¿Cuántas pegatinas tiene {x} ahora?",
                   "Un panadero hace {a} galletas y vende {b}. ¿Cuántas galletas quedan?"),
        "compare": ("{x} tiene {a} canicas y {y} tiene {b}. ¿Cuántas canicas más que {y} tiene {x}?",
                    "{x} lee {a} páginas. {y} lee {b} páginas más que {x}. ¿Cuántas páginas lee {y}?"),
        "combine": ("{x} recoge {a} manzanas y {y} recoge {b} manzanas. ¿Cuántas manzanas recogen entre los dos?",
                    "En una clase hay {a} niñas y {b} niños. ¿Cuántos alumnos hay en la clase?"),
        "groups": ("Hay {a} cajas con {k} lápices en cada una. ¿Cuántos lápices hay en total?",
                   "Un autobús recorre {v} km cada hora. ¿Cuántos km recorre en {h} horas?"),
        "times": ("{x} tiene {a} cromos. {y} tiene {k} veces más cromos. ¿Cuántos cromos tiene {y}?",
                  "{y} tiene {p} cromos, que son {k} veces los que tiene {x}. ¿Cuántos cromos tiene {x}?"),
        "share": ("Se reparten {p} galletas en partes iguales entre {k} niños. ¿Cuántas galletas recibe cada niño?",
                  "{x} pone {p} huevos en cajas de {k} huevos. ¿Cuántas cajas llena {x}?"),
        "fraction": ("{x} tiene {p} globos. {F} de ellos son rojos. ¿Cuántos globos rojos tiene {x}?",
                     "{x} tiene {p} euros y gasta {f} del dinero. ¿Cuántos euros gasta {x}?"),
        "twostep": ("{x} compra {a} paquetes de {b} lápices y regala {c} lápices. ¿Cuántos lápices le quedan?",
                    "{x} gana {a} euros el lunes y {b} euros el martes, y luego gasta {c} euros. ¿Cuántos euros "
                    "tiene {x} ahora?"),
        "money": ("Un cuaderno cuesta {p} euros. {x} compra {k} cuadernos y paga con {m} euros. ¿Cuántos euros "
                  "le devuelven?",
                  "{x} tiene {a} euros y compra una pelota por {b} euros. ¿Cuántos euros le quedan?"),
        "time": ("Una película dura {a} minutos. {x} ya ha visto {b} minutos. ¿Cuántos minutos faltan?",
                 "{x} practica piano {a} minutos cada día. ¿Cuántos minutos son en {k} días?"),
        "ages": ("{x} tiene {a} años. ¿Cuántos años tenía {x} hace {n} años?",
                 "{x} tiene {a} años. Su abuelo tiene {k} veces su edad. ¿Cuántos años tiene el abuelo?"),
    },
}
TEXTS.update({
    "ru": {
        "change": ("У {x_gen} {a} [a:наклейка|наклейки|наклеек]. {y} дарит {x_dat} ещё {b} [b:наклейку|наклейки|"
                   "наклеек]. Сколько наклеек теперь у {x_gen}?",
                   "Пекарь испёк {a} [a:булочку|булочки|булочек] и продал {b} из них. Сколько булочек осталось?"),
        "compare": ("У {x_gen} {a} [a:шарик|шарика|шариков], а у {y_gen} {b} [b:шарик|шарика|шариков]. На сколько "
                    "шариков у {x_gen} больше, чем у {y_gen}?",
                    "{x} читает {a} [a:страницу|страницы|страниц], а {y} читает на {b} [b:страницу|страницы|страниц] "
                    "больше. Сколько страниц читает {y}?"),
        "combine": ("{x} собирает {a} [a:яблоко|яблока|яблок], а {y} собирает {b} [b:яблоко|яблока|яблок]. Сколько "
                    "яблок они собирают вместе?",
                    "В классе {a} [a:девочка|девочки|девочек] и {b} [b:мальчик|мальчика|мальчиков]. Сколько детей в "
                    "классе?"),
        "groups": ("Есть {a} [a:коробка|коробки|коробок], в каждой по {k} [k:карандашу|карандаша|карандашей]. "
                   "Сколько всего карандашей?",
                   "Автобус проезжает {v} км за час. Сколько километров он проедет за {h} [h:час|часа|часов]?"),
        "times": ("У {x_gen} {a} [a:открытка|открытки|открыток]. У {y_gen} в {k} [k:раз|раза|раз] больше открыток. "
                  "Сколько открыток у {y_gen}?",
                  "У {y_gen} {p} [p:открытка|открытки|открыток], это в {k} [k:раз|раза|раз] больше, чем у {x_gen}. "
                  "Сколько открыток у {x_gen}?"),
        "share": ("{p} [p:конфету|конфеты|конфет] делят поровну между {k} детьми. Сколько конфет получит каждый "
                  "ребёнок?",
                  "{x} раскладывает {p} [p:яйцо|яйца|яиц] по коробкам, по {k} в каждую. Сколько коробок получится?"),
        "fraction": ("У {x_gen} {p} [p:шарик|шарика|шариков]. {F} из них красные. Сколько красных шариков у {x_gen}?",
                     "У {x_gen} {p} [p:рубль|рубля|рублей], и {x} тратит {f} этих денег. Сколько рублей тратит {x}?"),
        "twostep": ("{x} покупает {a} [a:пачку|пачки|пачек] карандашей, по {b} [b:карандашу|карандаша|карандашей] в "
                    "каждой, и отдаёт {c} [c:карандаш|карандаша|карандашей] друзьям. Сколько карандашей остаётся у "
                    "{x_gen}?",
                    "В понедельник {x} зарабатывает {a} [a:рубль|рубля|рублей], во вторник {b} [b:рубль|рубля|рублей], "
                    "а потом тратит {c} [c:рубль|рубля|рублей]. Сколько рублей теперь у {x_gen}?"),
        "money": ("Тетрадь стоит {p} [p:рубль|рубля|рублей]. {x} покупает {k} [k:тетрадь|тетради|тетрадей] и даёт "
                  "продавцу {m} [m:рубль|рубля|рублей]. Сколько рублей сдачи получит {x}?",
                  "У {x_gen} {a} [a:рубль|рубля|рублей]. {x} покупает мяч за {b} [b:рубль|рубля|рублей]. Сколько "
                  "рублей остаётся у {x_gen}?"),
        "time": ("Фильм длится {a} [a:минуту|минуты|минут], и {x} смотрит его уже {b} [b:минуту|минуты|минут]. "
                 "Сколько минут осталось?",
                 "{x} каждый день занимается на пианино {a} [a:минуту|минуты|минут]. Сколько минут это будет за {k} "
                 "[k:день|дня|дней]?"),
        "ages": ("{x_dat} {a} [a:год|года|лет]. Сколько лет было {x_dat} {n} [n:год|года|лет] назад?",
                 "{x_dat} {a} [a:год|года|лет]. Дедушка {x_gen} в {k} [k:раз|раза|раз] старше. Сколько лет "
                 "дедушке?"),
    },
    "zh": {
        "change": ("{x}有{a}张贴纸，{y}又给了{x}{b}张。{x}现在有多少张贴纸？",
                   "面包师做了{a}块饼干，卖掉了{b}块。还剩多少块饼干？"),
        "compare": ("{x}有{a}颗弹珠，{y}有{b}颗。{x}比{y}多多少颗弹珠？",
                    "{x}读了{a}页书，{y}比{x}多读了{b}页。{y}读了多少页？"),
        "combine": ("{x}摘了{a}个苹果，{y}摘了{b}个苹果。他们一共摘了多少个苹果？",
                    "一个班有{a}个女生和{b}个男生。这个班一共有多少个学生？"),
        "groups": ("有{a}个盒子，每个盒子里有{k}支铅笔。一共有多少支铅笔？",
                   "一辆公共汽车每小时行驶{v}千米。{h}小时行驶多少千米？"),
        "times": ("{x}有{a}张卡片，{y}的卡片数是{x}的{k}倍。{y}有多少张卡片？",
                  "{y}有{p}张卡片，是{x}的{k}倍。{x}有多少张卡片？"),
        "share": ("把{p}块饼干平均分给{k}个孩子，每个孩子分到多少块？",
                  "{x}把{p}个鸡蛋装进盒子里，每盒装{k}个。一共能装满多少盒？"),
        "fraction": ("{x}有{p}个气球，其中{f}是红色的。{x}有多少个红气球？",
                     "{x}有{p}元，花掉了其中的{f}。{x}花了多少元？"),
        "twostep": ("{x}买了{a}包铅笔，每包{b}支，又送给别人{c}支。{x}还剩多少支铅笔？",
                    "{x}星期一挣了{a}元，星期二挣了{b}元，然后花了{c}元。{x}现在有多少元？"),
        "money": ("一个笔记本{p}元。{x}买了{k}个笔记本，付了{m}元。应该找回多少元？",
                  "{x}有{a}元，买了一个{b}元的球。{x}还剩多少元？"),
        "time": ("一部电影长{a}分钟，{x}已经看了{b}分钟。还剩多少分钟？",
                 "{x}每天练钢琴{a}分钟。{k}天一共练多少分钟？"),
        "ages": ("{x}今年{a}岁。{n}年前{x}几岁？",
                 "{x}今年{a}岁，爷爷的年龄是{x}的{k}倍。爷爷今年多少岁？"),
    },
    "ja": {
        "change": ("{x}さんはシールを{a}枚持っています。{y}さんから{b}枚もらいました。{x}さんは今シールを何枚"
                   "持っていますか？",
                   "パン屋さんがクッキーを{a}枚焼いて、{b}枚売りました。クッキーは何枚残っていますか？"),
        "compare": ("{x}さんはビー玉を{a}個、{y}さんは{b}個持っています。{x}さんは{y}さんより何個多く持っていますか？",
                    "{x}さんは本を{a}ページ読みました。{y}さんは{x}さんより{b}ページ多く読みました。{y}さんは何ページ"
                    "読みましたか？"),
        "combine": ("{x}さんはりんごを{a}個、{y}さんは{b}個つみました。二人で合わせて何個つみましたか？",
                    "あるクラスには女の子が{a}人、男の子が{b}人います。クラスには全部で何人いますか？"),
        "groups": ("箱が{a}個あり、どの箱にも鉛筆が{k}本入っています。鉛筆は全部で何本ありますか？",
                   "バスは1時間に{v}km走ります。{h}時間では何km走りますか？"),
        "times": ("{x}さんはカードを{a}枚持っています。{y}さんは{x}さんの{k}倍持っています。{y}さんはカードを何枚"
                  "持っていますか？",
                  "{y}さんはカードを{p}枚持っていて、これは{x}さんの{k}倍です。{x}さんはカードを何枚持っていますか？"),
        "share": ("クッキー{p}枚を{k}人の子どもで同じ数ずつ分けます。1人何枚もらえますか？",
                  "{x}さんは卵{p}個を1箱に{k}個ずつ入れます。箱はいくつできますか？"),
        "fraction": ("{x}さんは風船を{p}個持っています。その{f}が赤い風船です。赤い風船は何個ですか？",
                     "{x}さんは{p}円持っていて、その{f}を使いました。{x}さんは何円使いましたか？"),
        "twostep": ("{x}さんは鉛筆が{b}本入ったパックを{a}パック買い、{c}本を友だちにあげました。{x}さんの鉛筆は何本"
                    "残っていますか？",
                    "{x}さんは月曜日に{a}円、火曜日に{b}円かせぎ、そのあと{c}円使いました。{x}さんは今何円持っていますか？"),
        "money": ("ノートは1冊{p}円です。{x}さんはノートを{k}冊買って、{m}円はらいました。おつりは何円ですか？",
                  "{x}さんは{a}円持っています。{b}円のボールを買いました。{x}さんは何円残っていますか？"),
        "time": ("映画は{a}分あります。{x}さんはもう{b}分見ました。残りは何分ですか？",
                 "{x}さんは毎日{a}分ピアノの練習をします。{k}日間では何分になりますか？"),
        "ages": ("{x}さんは{a}歳です。{n}年前、{x}さんは何歳でしたか？",
                 "{x}さんは{a}歳です。おじいさんの年れいは{x}さんの{k}倍です。おじいさんは何歳ですか？"),
    },
    "th": {
        "change": ("{x}มีสติกเกอร์ {a} แผ่น {y}ให้เพิ่มอีก {b} แผ่น ตอนนี้{x}มีสติกเกอร์กี่แผ่น",
                   "คนทำขนมอบคุกกี้ {a} ชิ้น และขายไป {b} ชิ้น เหลือคุกกี้กี่ชิ้น"),
        "compare": ("{x}มีลูกแก้ว {a} ลูก {y}มี {b} ลูก {x}มีลูกแก้วมากกว่า{y}กี่ลูก",
                    "{x}อ่านหนังสือ {a} หน้า {y}อ่านมากกว่า{x} {b} หน้า {y}อ่านหนังสือกี่หน้า"),
        "combine": ("{x}เก็บแอปเปิลได้ {a} ผล {y}เก็บได้ {b} ผล ทั้งสองคนเก็บแอปเปิลได้รวมกันกี่ผล",
                    "ห้องเรียนหนึ่งมีนักเรียนหญิง {a} คน และนักเรียนชาย {b} คน ห้องนี้มีนักเรียนทั้งหมดกี่คน"),
        "groups": ("มีกล่อง {a} กล่อง แต่ละกล่องมีดินสอ {k} แท่ง มีดินสอทั้งหมดกี่แท่ง",
                   "รถบัสวิ่งได้ชั่วโมงละ {v} กิโลเมตร ใน {h} ชั่วโมงจะวิ่งได้กี่กิโลเมตร"),
        "times": ("{x}มีการ์ด {a} ใบ {y}มีการ์ดเป็น {k} เท่าของ{x} {y}มีการ์ดกี่ใบ",
                  "{y}มีการ์ด {p} ใบ ซึ่งเป็น {k} เท่าของการ์ดที่{x}มี {x}มีการ์ดกี่ใบ"),
        "share": ("แบ่งคุกกี้ {p} ชิ้นให้เด็ก {k} คนเท่า ๆ กัน เด็กแต่ละคนจะได้คุกกี้กี่ชิ้น",
                  "{x}ใส่ไข่ {p} ฟองลงในกล่อง กล่องละ {k} ฟอง จะได้ไข่กี่กล่อง"),
        "fraction": ("{x}มีลูกโป่ง {p} ลูก {f}เป็นสีแดง {x}มีลูกโป่งสีแดงกี่ลูก",
                     "{x}มีเงิน {p} บาท ใช้ไป{f}ของเงินทั้งหมด {x}ใช้เงินไปกี่บาท"),
        "twostep": ("{x}ซื้อดินสอ {a} แพ็ก แพ็กละ {b} แท่ง แล้วแบ่งให้เพื่อน {c} แท่ง {x}เหลือดินสอกี่แท่ง",
                    "{x}ได้เงิน {a} บาทในวันจันทร์ และ {b} บาทในวันอังคาร แล้วใช้ไป {c} บาท ตอนนี้{x}มีเงินกี่บาท"),
        "money": ("สมุดราคาเล่มละ {p} บาท {x}ซื้อสมุด {k} เล่ม และจ่ายเงิน {m} บาท {x}จะได้เงินทอนกี่บาท",
                  "{x}มีเงิน {a} บาท ซื้อลูกบอลราคา {b} บาท {x}เหลือเงินกี่บาท"),
        "time": ("ภาพยนตร์เรื่องหนึ่งยาว {a} นาที {x}ดูไปแล้ว {b} นาที เหลืออีกกี่นาที",
                 "{x}ซ้อมเปียโนวันละ {a} นาที ใน {k} วัน{x}ซ้อมเปียโนกี่นาที"),
        "ages": ("{x}อายุ {a} ปี เมื่อ {n} ปีที่แล้ว{x}อายุกี่ปี",
                 "{x}อายุ {a} ปี คุณปู่ของ{x}มีอายุเป็น {k} เท่าของ{x} คุณปู่อายุกี่ปี"),
    },
    "sw": {
        "change": ("{x} ana stika {a}. {y} anampa stika {b} zaidi. Sasa {x} ana stika ngapi?",
                   "Mwokaji anaoka biskuti {a} na anauza biskuti {b}. Zimebaki biskuti ngapi?"),
        "compare": ("{x} ana gololi {a} na {y} ana gololi {b}. {x} ana gololi ngapi zaidi ya {y}?",
                    "{x} anasoma kurasa {a}. {y} anasoma kurasa {b} zaidi ya {x}. {y} anasoma kurasa ngapi?"),
        "combine": ("{x} anachuma machungwa {a} na {y} anachuma machungwa {b}. Wamechuma machungwa mangapi kwa "
                    "jumla?",
                    "Darasa lina wasichana {a} na wavulana {b}. Darasani kuna watoto wangapi?"),
        "groups": ("Kuna masanduku {a} na kila sanduku lina penseli {k}. Kuna penseli ngapi kwa jumla?",
                   "Basi linasafiri kilomita {v} kila saa. Litasafiri kilomita ngapi kwa saa {h}?"),
        "times": ("{x} ana kadi {a}. {y} ana kadi mara {k} ya {x}. {y} ana kadi ngapi?",
                  "{y} ana kadi {p}, ambazo ni mara {k} ya kadi za {x}. {x} ana kadi ngapi?"),
        "share": ("Biskuti {p} zinagawanywa sawa kwa watoto {k}. Kila mtoto anapata biskuti ngapi?",
                  "{x} anaweka mayai {p} katika masanduku, mayai {k} kila sanduku. Atajaza masanduku mangapi?"),
        "fraction": ("{x} ana puto {p}. {F} ya puto hizo ni nyekundu. {x} ana puto ngapi nyekundu?",
                     "{x} ana shilingi {p} na anatumia {f} ya pesa hizo. {x} anatumia shilingi ngapi?"),
        "twostep": ("{x} ananunua pakiti {a} za penseli, kila pakiti ina penseli {b}, kisha anatoa penseli {c}. "
                    "{x} amebaki na penseli ngapi?",
                    "{x} anapata shilingi {a} Jumatatu na shilingi {b} Jumanne, kisha anatumia shilingi {c}. Sasa {x} "
                    "ana shilingi ngapi?"),
        "money": ("Daftari moja linauzwa shilingi {p}. {x} ananunua madaftari {k} na analipa shilingi {m}. {x} "
                  "atarudishiwa shilingi ngapi?",
                  "{x} ana shilingi {a} na ananunua mpira kwa shilingi {b}. {x} amebaki na shilingi ngapi?"),
        "time": ("Filamu inachukua dakika {a}. {x} ameshatazama dakika {b}. Zimebaki dakika ngapi?",
                 "{x} anafanya mazoezi ya piano dakika {a} kila siku. Ni dakika ngapi kwa siku {k}?"),
        "ages": ("{x} ana umri wa miaka {a}. Miaka {n} iliyopita {x} alikuwa na umri wa miaka mingapi?",
                 "{x} ana umri wa miaka {a}. Babu yake ana umri mara {k} ya umri wake. Babu ana umri wa miaka "
                 "mingapi?"),
    },
    "bn": {
        "change": ("{x}-এর কাছে {a}টি স্টিকার আছে। {y} তাকে আরও {b}টি স্টিকার দেয়। এখন {x}-এর কাছে কয়টি স্টিকার আছে?",
                   "একজন রুটিওয়ালা {a}টি বিস্কুট বানায় এবং {b}টি বিক্রি করে। কয়টি বিস্কুট বাকি থাকে?"),
        "compare": ("{x}-এর কাছে {a}টি মার্বেল আর {y}-এর কাছে {b}টি মার্বেল আছে। {y}-এর চেয়ে {x}-এর কাছে কয়টি "
                    "মার্বেল বেশি আছে?",
                    "{x} {a} পৃষ্ঠা পড়ে। {y} {x}-এর চেয়ে {b} পৃষ্ঠা বেশি পড়ে। {y} কত পৃষ্ঠা পড়ে?"),
        "combine": ("{x} {a}টি আপেল তোলে এবং {y} {b}টি আপেল তোলে। তারা মোট কয়টি আপেল তোলে?",
                    "একটি ক্লাসে {a} জন মেয়ে এবং {b} জন ছেলে আছে। ক্লাসে মোট কতজন শিশু আছে?"),
        "groups": ("{a}টি বাক্স আছে, প্রতিটি বাক্সে {k}টি পেনসিল আছে। মোট কয়টি পেনসিল আছে?",
                   "একটি বাস প্রতি ঘণ্টায় {v} কিলোমিটার যায়। {h} ঘণ্টায় বাসটি কত কিলোমিটার যাবে?"),
        "times": ("{x}-এর কাছে {a}টি কার্ড আছে। {y}-এর কাছে তার {k} গুণ কার্ড আছে। {y}-এর কাছে কয়টি কার্ড আছে?",
                  "{y}-এর কাছে {p}টি কার্ড আছে, যা {x}-এর কার্ডের {k} গুণ। {x}-এর কাছে কয়টি কার্ড আছে?"),
        "share": ("{p}টি বিস্কুট {k} জন শিশুর মধ্যে সমানভাবে ভাগ করা হলো। প্রত্যেক শিশু কয়টি বিস্কুট পাবে?",
                  "{x} {p}টি ডিম বাক্সে রাখে, প্রতিটি বাক্সে {k}টি করে। {x} কয়টি বাক্স ভরতে পারবে?"),
        "fraction": ("{x}-এর কাছে {p}টি বেলুন আছে। তার {f} লাল। {x}-এর কাছে কয়টি লাল বেলুন আছে?",
                     "{x}-এর কাছে {p} টাকা আছে। সে তার {f} খরচ করে। {x} কত টাকা খরচ করে?"),
        "twostep": ("{x} {a} প্যাকেট পেনসিল কেনে, প্রতি প্যাকেটে {b}টি পেনসিল। তারপর সে {c}টি পেনসিল দিয়ে দেয়। "
                    "{x}-এর কাছে কয়টি পেনসিল বাকি থাকে?",
                    "{x} সোমবার {a} টাকা এবং মঙ্গলবার {b} টাকা আয় করে, তারপর {c} টাকা খরচ করে। এখন {x}-এর কাছে "
                    "কত টাকা আছে?"),
        "money": ("একটি খাতার দাম {p} টাকা। {x} {k}টি খাতা কেনে এবং {m} টাকা দেয়। {x} কত টাকা ফেরত পাবে?",
                  "{x}-এর কাছে {a} টাকা আছে। সে {b} টাকা দিয়ে একটি বল কেনে। {x}-এর কাছে কত টাকা বাকি থাকে?"),
        "time": ("একটি সিনেমা {a} মিনিট লম্বা। {x} ইতিমধ্যে {b} মিনিট দেখেছে। আর কত মিনিট বাকি?",
                 "{x} প্রতিদিন {a} মিনিট পিয়ানো অনুশীলন করে। {k} দিনে মোট কত মিনিট হয়?"),
        "ages": ("{x}-এর বয়স {a} বছর। {n} বছর আগে {x}-এর বয়স কত ছিল?",
                 "{x}-এর বয়স {a} বছর। তার দাদুর বয়স তার বয়সের {k} গুণ। দাদুর বয়স কত?"),
    },
    "te": {
        "change": ("{x} దగ్గర {a} స్టిక్కర్లు ఉన్నాయి. {y} ఇంకా {b} స్టిక్కర్లు ఇచ్చారు. ఇప్పుడు {x} దగ్గర ఎన్ని "
                   "స్టిక్కర్లు ఉన్నాయి?",
                   "ఒక బేకర్ {a} బిస్కెట్లు తయారు చేసి {b} అమ్మారు. ఇంకా ఎన్ని బిస్కెట్లు మిగిలాయి?"),
        "compare": ("{x} దగ్గర {a} గోళీలు, {y} దగ్గర {b} గోళీలు ఉన్నాయి. {y} కంటే {x} దగ్గర ఎన్ని గోళీలు ఎక్కువ "
                    "ఉన్నాయి?",
                    "{x} {a} పేజీలు చదివారు. {y} {x} కంటే {b} పేజీలు ఎక్కువ చదివారు. {y} ఎన్ని పేజీలు చదివారు?"),
        "combine": ("{x} {a} ఆపిల్స్ కోశారు, {y} {b} ఆపిల్స్ కోశారు. ఇద్దరూ కలిసి ఎన్ని ఆపిల్స్ కోశారు?",
                    "ఒక తరగతిలో {a} మంది అమ్మాయిలు, {b} మంది అబ్బాయిలు ఉన్నారు. తరగతిలో మొత్తం ఎంత మంది పిల్లలు "
                    "ఉన్నారు?"),
        "groups": ("{a} పెట్టెలు ఉన్నాయి, ప్రతి పెట్టెలో {k} పెన్సిళ్లు ఉన్నాయి. మొత్తం ఎన్ని పెన్సిళ్లు ఉన్నాయి?",
                   "ఒక బస్సు గంటకు {v} కిలోమీటర్లు వెళ్తుంది. {h} గంటల్లో అది ఎన్ని కిలోమీటర్లు వెళ్తుంది?"),
        "times": ("{x} దగ్గర {a} కార్డులు ఉన్నాయి. {y} దగ్గర దానికి {k} రెట్లు కార్డులు ఉన్నాయి. {y} దగ్గర ఎన్ని "
                  "కార్డులు ఉన్నాయి?",
                  "{y} దగ్గర {p} కార్డులు ఉన్నాయి, అవి {x} దగ్గర ఉన్నవాటికి {k} రెట్లు. {x} దగ్గర ఎన్ని కార్డులు "
                  "ఉన్నాయి?"),
        "share": ("{p} బిస్కెట్లను {k} మంది పిల్లలకు సమానంగా పంచారు. ఒక్కొక్కరికి ఎన్ని బిస్కెట్లు వచ్చాయి?",
                  "{x} {p} గుడ్లను పెట్టెల్లో, ఒక్కో పెట్టెలో {k} చొప్పున పెట్టారు. ఎన్ని పెట్టెలు నిండాయి?"),
        "fraction": ("{x} దగ్గర {p} బెలూన్లు ఉన్నాయి. వాటిలో {f} ఎరుపు రంగువి. {x} దగ్గర ఎన్ని ఎరుపు బెలూన్లు "
                     "ఉన్నాయి?",
                     "{x} దగ్గర {p} రూపాయలు ఉన్నాయి. అందులో {f} ఖర్చు చేశారు. {x} ఎన్ని రూపాయలు ఖర్చు చేశారు?"),
        "twostep": ("{x} {a} పెన్సిల్ ప్యాకెట్లు కొన్నారు, ఒక్కో ప్యాకెట్‌లో {b} పెన్సిళ్లు ఉన్నాయి. తర్వాత {c} "
                    "పెన్సిళ్లు ఇచ్చేశారు. {x} దగ్గర ఇంకా ఎన్ని పెన్సిళ్లు ఉన్నాయి?",
                    "{x} సోమవారం {a} రూపాయలు, మంగళవారం {b} రూపాయలు సంపాదించి, తర్వాత {c} రూపాయలు ఖర్చు చేశారు. "
                    "ఇప్పుడు {x} దగ్గర ఎన్ని రూపాయలు ఉన్నాయి?"),
        "money": ("ఒక నోట్‌బుక్ ధర {p} రూపాయలు. {x} {k} నోట్‌బుక్‌లు కొని {m} రూపాయలు ఇచ్చారు. {x}కి ఎన్ని "
                  "రూపాయల చిల్లర తిరిగి వస్తుంది?",
                  "{x} దగ్గర {a} రూపాయలు ఉన్నాయి. {b} రూపాయలకు ఒక బంతి కొన్నారు. {x} దగ్గర ఇంకా ఎన్ని రూపాయలు "
                  "మిగిలాయి?"),
        "time": ("ఒక సినిమా {a} నిమిషాలు ఉంటుంది. {x} ఇప్పటికే {b} నిమిషాలు చూశారు. ఇంకా ఎన్ని నిమిషాలు మిగిలి "
                 "ఉన్నాయి?",
                 "{x} ప్రతిరోజూ {a} నిమిషాలు పియానో సాధన చేస్తారు. {k} రోజుల్లో మొత్తం ఎన్ని నిమిషాలు అవుతుంది?"),
        "ages": ("{x} వయస్సు {a} సంవత్సరాలు. {n} సంవత్సరాల క్రితం {x} వయస్సు ఎంత?",
                 "{x} వయస్సు {a} సంవత్సరాలు. వారి తాతగారి వయస్సు {x} వయస్సుకు {k} రెట్లు. తాతగారి వయస్సు ఎంత?"),
    },
})
