//! Every word of the connect pages, one table per language. A new language is one more
//! table here and one more arm in [`texts`].

use shared::pages::Lang;

/// What a page says: what happened, and what to do now.
pub struct Message {
    pub title: &'static str,
    pub what: &'static str,
    pub next: &'static str,
}

pub struct Texts {
    pub connected: Message,
    pub partial: Message,
    /// What is off when a product's permission was not granted: calendar, contacts, Gmail.
    pub missing: [&'static str; 3],
    pub denied: Message,
    pub expired: Message,
    pub wrong_account: Message,
    pub email_not_verified: Message,
    pub account_in_use: Message,
    pub client_broken: Message,
    pub failed: Message,
    /// The button back to the CRM.
    pub back: &'static str,
    /// Said instead when the CRM gave no return URL.
    pub close: &'static str,
    /// Before the outcome code, for support.
    pub reference: &'static str,
}

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::En => &EN,
        Lang::Vi => &VI,
        Lang::Ja => &JA,
        Lang::Ru => &RU,
        Lang::Cs => &CS,
    }
}

const EN: Texts = Texts {
    connected: Message {
        title: "Google account connected",
        what: "Your Google account is now connected to the CRM.",
        next: "Syncing starts in a moment; nothing else to do.",
    },
    partial: Message {
        title: "Google account partly connected",
        what: "Your Google account is connected, but you did not allow everything the CRM asked for. These are off:",
        next: "To turn them on, connect again from the CRM and tick every box on Google's consent page.",
    },
    missing: [
        "Calendar: meetings and calls are not synced with Google Calendar.",
        "Contacts: contacts are not synced with Google Contacts.",
        "Gmail: the CRM cannot send or read your e-mail through Gmail.",
    ],
    denied: Message {
        title: "Not connected",
        what: "You cancelled on Google's page, so nothing was connected and nothing was shared.",
        next: "If that was a mistake, start again from the CRM and choose Allow.",
    },
    expired: Message {
        title: "This sign-in link has expired",
        what: "The link was already used or is more than ten minutes old. Nothing was changed.",
        next: "Go back to the CRM and start connecting again: it makes a fresh link.",
    },
    wrong_account: Message {
        title: "Wrong Google account",
        what: "You chose a different Google account than the one this link is for. Nothing was connected, and an existing connection is unchanged.",
        next: "Start again from the CRM and pick the account the CRM names. If someone sent you this link, do not use it: connect your own account from your own CRM user.",
    },
    email_not_verified: Message {
        title: "Google account not verified",
        what: "Google has not verified the e-mail address of this Google account, so it cannot be connected. Nothing was connected.",
        next: "Verify the address in your Google account, then connect again from the CRM.",
    },
    account_in_use: Message {
        title: "Google account already in use",
        what: "This Google account is already connected to another user of this CRM. A Google account can belong to one CRM user only. Nothing was connected.",
        next: "Use another Google account, or ask the other user (or your administrator) to disconnect it first.",
    },
    client_broken: Message {
        title: "Google refused this CRM's sign-in settings",
        what: "Google did not accept the CRM's Google client (its ID or secret is wrong, or it was deleted). Nothing was connected.",
        next: "Tell your CRM administrator: the Google client in the admin console needs fixing. Then connect again.",
    },
    failed: Message {
        title: "Could not connect",
        what: "Something went wrong while connecting your Google account. Nothing was connected.",
        next: "Please try again from the CRM in a few minutes. If it keeps failing, tell your administrator the reference below.",
    },
    back: "Back to the CRM",
    close: "You can close this window.",
    reference: "Reference",
};

const VI: Texts = Texts {
    connected: Message {
        title: "Đã kết nối tài khoản Google",
        what: "Tài khoản Google của bạn đã được kết nối với CRM.",
        next: "Việc đồng bộ sẽ bắt đầu trong giây lát; bạn không cần làm gì thêm.",
    },
    partial: Message {
        title: "Tài khoản Google mới được kết nối một phần",
        what: "Tài khoản Google của bạn đã được kết nối, nhưng bạn chưa cho phép mọi quyền CRM yêu cầu. Các mục sau đang tắt:",
        next: "Để bật chúng, hãy kết nối lại từ CRM và đánh dấu mọi ô trên trang đồng ý của Google.",
    },
    missing: [
        "Lịch: cuộc họp và cuộc gọi không được đồng bộ với Google Calendar.",
        "Danh bạ: liên hệ không được đồng bộ với Google Contacts.",
        "Gmail: CRM không thể gửi hoặc đọc e-mail của bạn qua Gmail.",
    ],
    denied: Message {
        title: "Chưa kết nối",
        what: "Bạn đã hủy trên trang của Google, nên không có gì được kết nối hay chia sẻ.",
        next: "Nếu đó là nhầm lẫn, hãy bắt đầu lại từ CRM và chọn Cho phép.",
    },
    expired: Message {
        title: "Liên kết đăng nhập này đã hết hạn",
        what: "Liên kết đã được dùng hoặc đã quá mười phút. Không có gì thay đổi.",
        next: "Hãy quay lại CRM và bắt đầu kết nối lại: CRM sẽ tạo một liên kết mới.",
    },
    wrong_account: Message {
        title: "Sai tài khoản Google",
        what: "Bạn đã chọn một tài khoản Google khác với tài khoản mà liên kết này dành cho. Không có gì được kết nối, và kết nối hiện có không thay đổi.",
        next: "Hãy bắt đầu lại từ CRM và chọn đúng tài khoản CRM chỉ định. Nếu ai đó gửi liên kết này cho bạn, đừng dùng nó: hãy kết nối tài khoản của chính bạn từ người dùng CRM của bạn.",
    },
    email_not_verified: Message {
        title: "Tài khoản Google chưa được xác minh",
        what: "Google chưa xác minh địa chỉ e-mail của tài khoản Google này, nên không thể kết nối. Không có gì được kết nối.",
        next: "Hãy xác minh địa chỉ trong tài khoản Google của bạn, rồi kết nối lại từ CRM.",
    },
    account_in_use: Message {
        title: "Tài khoản Google đang được dùng",
        what: "Tài khoản Google này đã được kết nối với một người dùng khác của CRM. Mỗi tài khoản Google chỉ thuộc về một người dùng CRM. Không có gì được kết nối.",
        next: "Hãy dùng tài khoản Google khác, hoặc nhờ người dùng kia (hoặc quản trị viên) ngắt kết nối trước.",
    },
    client_broken: Message {
        title: "Google đã từ chối cấu hình đăng nhập của CRM",
        what: "Google không chấp nhận Google client của CRM (ID hoặc secret sai, hoặc đã bị xóa). Không có gì được kết nối.",
        next: "Hãy báo quản trị viên CRM: cần sửa Google client trong trang quản trị. Sau đó kết nối lại.",
    },
    failed: Message {
        title: "Không thể kết nối",
        what: "Đã xảy ra lỗi khi kết nối tài khoản Google của bạn. Không có gì được kết nối.",
        next: "Vui lòng thử lại từ CRM sau vài phút. Nếu vẫn lỗi, hãy báo quản trị viên mã tham chiếu bên dưới.",
    },
    back: "Quay lại CRM",
    close: "Bạn có thể đóng cửa sổ này.",
    reference: "Mã tham chiếu",
};

const JA: Texts = Texts {
    connected: Message {
        title: "Google アカウントを接続しました",
        what: "お使いの Google アカウントが CRM に接続されました。",
        next: "まもなく同期が始まります。ほかに操作は必要ありません。",
    },
    partial: Message {
        title: "Google アカウントの接続は一部のみです",
        what: "Google アカウントは接続されましたが、CRM が求めた権限の一部が許可されていません。次の機能は無効です:",
        next: "有効にするには、CRM からもう一度接続し、Google の同意画面ですべての項目にチェックを入れてください。",
    },
    missing: [
        "カレンダー: 会議と通話は Google カレンダーと同期されません。",
        "連絡先: 連絡先は Google コンタクトと同期されません。",
        "Gmail: CRM は Gmail 経由でメールを送受信できません。",
    ],
    denied: Message {
        title: "接続されていません",
        what: "Google の画面でキャンセルされたため、何も接続・共有されていません。",
        next: "誤って操作した場合は、CRM からやり直して「許可」を選んでください。",
    },
    expired: Message {
        title: "このサインイン リンクは期限切れです",
        what: "このリンクは使用済みか、発行から 10 分以上たっています。何も変更されていません。",
        next: "CRM に戻って、もう一度接続を始めてください。新しいリンクが作られます。",
    },
    wrong_account: Message {
        title: "Google アカウントが違います",
        what: "このリンクの対象とは別の Google アカウントが選ばれました。何も接続されておらず、既存の接続も変わっていません。",
        next: "CRM からやり直し、CRM が指定するアカウントを選んでください。誰かから送られたリンクであれば使わずに、ご自身の CRM ユーザーからご自身のアカウントを接続してください。",
    },
    email_not_verified: Message {
        title: "Google アカウントが確認されていません",
        what: "この Google アカウントのメールアドレスは Google で確認されていないため、接続できません。何も接続されていません。",
        next: "Google アカウントでメールアドレスを確認してから、CRM からもう一度接続してください。",
    },
    account_in_use: Message {
        title: "この Google アカウントは使用中です",
        what: "この Google アカウントは、この CRM の別のユーザーに接続されています。1 つの Google アカウントは 1 人の CRM ユーザーにしか接続できません。何も接続されていません。",
        next: "別の Google アカウントを使うか、そのユーザー(または管理者)に先に接続を解除してもらってください。",
    },
    client_broken: Message {
        title: "Google が CRM のサインイン設定を拒否しました",
        what: "Google は CRM の Google クライアントを受け付けませんでした(ID かシークレットが誤っているか、削除されています)。何も接続されていません。",
        next: "CRM の管理者に、管理コンソールの Google クライアントの修正を依頼してください。その後もう一度接続してください。",
    },
    failed: Message {
        title: "接続できませんでした",
        what: "Google アカウントの接続中に問題が発生しました。何も接続されていません。",
        next: "数分後に CRM からもう一度お試しください。失敗が続く場合は、下の参照コードを管理者に伝えてください。",
    },
    back: "CRM に戻る",
    close: "このウィンドウは閉じてかまいません。",
    reference: "参照コード",
};

const RU: Texts = Texts {
    connected: Message {
        title: "Аккаунт Google подключён",
        what: "Ваш аккаунт Google подключён к CRM.",
        next: "Синхронизация начнётся через несколько секунд; больше ничего делать не нужно.",
    },
    partial: Message {
        title: "Аккаунт Google подключён частично",
        what: "Ваш аккаунт Google подключён, но вы разрешили не всё, что запросила CRM. Отключено:",
        next: "Чтобы включить это, подключитесь снова из CRM и отметьте все пункты на странице согласия Google.",
    },
    missing: [
        "Календарь: встречи и звонки не синхронизируются с Google Календарём.",
        "Контакты: контакты не синхронизируются с Google Контактами.",
        "Gmail: CRM не может отправлять и читать вашу почту через Gmail.",
    ],
    denied: Message {
        title: "Не подключено",
        what: "Вы отменили вход на странице Google, поэтому ничего не подключено и ничем не поделились.",
        next: "Если это ошибка, начните заново из CRM и выберите «Разрешить».",
    },
    expired: Message {
        title: "Срок действия ссылки для входа истёк",
        what: "Ссылка уже использована или выдана более десяти минут назад. Ничего не изменилось.",
        next: "Вернитесь в CRM и начните подключение заново: CRM создаст новую ссылку.",
    },
    wrong_account: Message {
        title: "Не тот аккаунт Google",
        what: "Вы выбрали другой аккаунт Google, а не тот, для которого выдана ссылка. Ничего не подключено, существующее подключение не изменилось.",
        next: "Начните заново из CRM и выберите аккаунт, который указывает CRM. Если эту ссылку вам кто-то прислал, не используйте её: подключите свой аккаунт из своего пользователя CRM.",
    },
    email_not_verified: Message {
        title: "Аккаунт Google не подтверждён",
        what: "Google не подтвердил адрес электронной почты этого аккаунта, поэтому его нельзя подключить. Ничего не подключено.",
        next: "Подтвердите адрес в аккаунте Google, затем подключитесь снова из CRM.",
    },
    account_in_use: Message {
        title: "Аккаунт Google уже используется",
        what: "Этот аккаунт Google уже подключён к другому пользователю этой CRM. Аккаунт Google может принадлежать только одному пользователю CRM. Ничего не подключено.",
        next: "Используйте другой аккаунт Google или попросите другого пользователя (или администратора) сначала отключить его.",
    },
    client_broken: Message {
        title: "Google отклонил настройки входа этой CRM",
        what: "Google не принял клиент Google этой CRM (неверный ID или секрет, либо клиент удалён). Ничего не подключено.",
        next: "Сообщите администратору CRM: нужно исправить клиент Google в консоли администратора. Затем подключитесь снова.",
    },
    failed: Message {
        title: "Не удалось подключиться",
        what: "При подключении аккаунта Google что-то пошло не так. Ничего не подключено.",
        next: "Попробуйте снова из CRM через несколько минут. Если ошибка повторяется, сообщите администратору код ниже.",
    },
    back: "Вернуться в CRM",
    close: "Это окно можно закрыть.",
    reference: "Код",
};

const CS: Texts = Texts {
    connected: Message {
        title: "Účet Google je připojen",
        what: "Váš účet Google je nyní připojen k CRM.",
        next: "Synchronizace za chvíli začne; nic dalšího není třeba.",
    },
    partial: Message {
        title: "Účet Google je připojen jen částečně",
        what: "Váš účet Google je připojen, ale nepovolili jste vše, oč CRM žádalo. Vypnuto je:",
        next: "Chcete-li to zapnout, připojte se znovu z CRM a na stránce souhlasu Google zaškrtněte všechna políčka.",
    },
    missing: [
        "Kalendář: schůzky a hovory se nesynchronizují s Kalendářem Google.",
        "Kontakty: kontakty se nesynchronizují s Kontakty Google.",
        "Gmail: CRM nemůže odesílat ani číst vaši poštu přes Gmail.",
    ],
    denied: Message {
        title: "Nepřipojeno",
        what: "Na stránce Google jste akci zrušili, takže nic nebylo připojeno ani sdíleno.",
        next: "Pokud šlo o omyl, začněte znovu z CRM a zvolte Povolit.",
    },
    expired: Message {
        title: "Platnost přihlašovacího odkazu vypršela",
        what: "Odkaz už byl použit nebo je starší než deset minut. Nic se nezměnilo.",
        next: "Vraťte se do CRM a začněte připojení znovu: CRM vytvoří nový odkaz.",
    },
    wrong_account: Message {
        title: "Nesprávný účet Google",
        what: "Zvolili jste jiný účet Google, než pro který je tento odkaz. Nic nebylo připojeno a stávající připojení se nezměnilo.",
        next: "Začněte znovu z CRM a vyberte účet, který CRM uvádí. Pokud vám tento odkaz někdo poslal, nepoužívejte ho: připojte svůj vlastní účet ze svého uživatele CRM.",
    },
    email_not_verified: Message {
        title: "Účet Google není ověřen",
        what: "Google neověřil e-mailovou adresu tohoto účtu, proto jej nelze připojit. Nic nebylo připojeno.",
        next: "Ověřte adresu ve svém účtu Google a pak se znovu připojte z CRM.",
    },
    account_in_use: Message {
        title: "Účet Google se už používá",
        what: "Tento účet Google je už připojen k jinému uživateli tohoto CRM. Účet Google může patřit jen jednomu uživateli CRM. Nic nebylo připojeno.",
        next: "Použijte jiný účet Google, nebo požádejte druhého uživatele (či správce), aby jej nejprve odpojil.",
    },
    client_broken: Message {
        title: "Google odmítl přihlašovací nastavení tohoto CRM",
        what: "Google nepřijal klienta Google tohoto CRM (chybné ID nebo tajný klíč, případně byl smazán). Nic nebylo připojeno.",
        next: "Sdělte to správci CRM: klienta Google je třeba opravit v administraci. Potom se připojte znovu.",
    },
    failed: Message {
        title: "Připojení se nezdařilo",
        what: "Při připojování účtu Google se něco pokazilo. Nic nebylo připojeno.",
        next: "Zkuste to prosím za pár minut znovu z CRM. Pokud chyba přetrvá, sdělte správci kód níže.",
    },
    back: "Zpět do CRM",
    close: "Toto okno můžete zavřít.",
    reference: "Kód",
};
