package corpus

// vocab is the generator's word list. No entry contains RareWord or
// CommonWord (checked by a test), so searches for them have one answer.
var vocab = []string{
	"the", "of", "and", "to", "in", "is", "for", "on", "that", "with",
	"as", "at", "by", "this", "we", "be", "from", "are", "or", "an",
	"will", "can", "all", "our", "please", "about", "your", "have", "more",
	"meeting", "project", "schedule", "budget", "report", "review", "draft",
	"invoice", "payment", "order", "shipping", "delivery", "account", "update",
	"release", "version", "server", "network", "backup", "storage", "database",
	"customer", "contract", "proposal", "deadline", "agenda", "minutes",
	"notes", "summary", "attached", "document", "spreadsheet", "figures",
	"quarter", "annual", "monthly", "weekly", "team", "office", "travel",
	"hotel", "flight", "ticket", "booking", "conference", "workshop",
	"training", "session", "lunch", "dinner", "coffee", "break", "holiday",
	"vacation", "leave", "request", "approval", "approved", "pending",
	"rejected", "feedback", "question", "answer", "issue", "problem", "fix",
	"patch", "change", "test", "results", "analysis", "data", "chart",
	"graph", "table", "list", "item", "items", "price", "cost", "discount",
	"offer", "sale", "product", "service", "support", "help", "thanks",
	"thank", "you", "regards", "best", "kind", "hello", "dear", "hi",
	"morning", "afternoon", "evening", "today", "tomorrow", "yesterday",
	"monday", "tuesday", "wednesday", "thursday", "friday", "next", "last",
	"week", "month", "year", "time", "date", "place", "room", "building",
	"floor", "city", "north", "south", "east", "west", "garden", "river",
	"mountain", "lake", "forest", "coast", "harbour", "bridge", "road",
	"train", "station", "airport", "parcel", "letter", "phone", "call",
	"message", "email", "reply", "forward", "copy", "folder", "archive",
	"calendar", "invite", "confirm", "cancel", "postpone", "move", "plan",
	"strategy", "goal", "target", "progress", "status", "risk", "issue",
	"owner", "manager", "director", "engineer", "designer", "analyst",
	"student", "teacher", "course", "lecture", "exam", "grade", "library",
	"book", "chapter", "page", "paper", "journal", "article", "press",
	"news", "story", "photo", "picture", "video", "audio", "music", "song",
	"game", "match", "score", "player", "club", "member", "board", "vote",
	"election", "policy", "rule", "law", "court", "case", "claim", "form",
	"field", "value", "number", "total", "balance", "bank", "transfer",
	"receipt", "refund", "return", "warranty", "repair", "install", "setup",
	"config", "password", "login", "security", "access", "permission",
	"group", "share", "link", "download", "upload", "file", "image", "print",
	"scan", "sign", "signature", "stamp", "seal", "box", "package", "label",
	"green", "blue", "red", "yellow", "orange", "purple", "black", "white",
	"quick", "slow", "early", "late", "soon", "later", "again", "still",
	"always", "never", "often", "sometimes", "maybe", "certainly", "indeed",
}

// foreignWords put non-ASCII text into subjects and bodies.
var foreignWords = []string{
	"Überprüfung", "réunion", "встреча", "会議", "ζήτημα", "Ångström",
	"façade", "naïve", "smörgåsbord", "żółw", "çalışma", "résumé",
	"добро", "東京", "Grüße", "niño", "straße", "coöperatie",
}

var firstNames = []string{
	"Alice", "Bob", "Zoë", "Łukasz", "Søren", "Иван", "田中", "José",
	"Chloé", "Mårten", "Priya", "Kwame", "Ingrid", "Nikos", "Aoife", "Dmitri",
}

var lastNames = []string{
	"Smith", "Ångström", "Żółkiewski", "Kierkegaard", "Петров", "太郎",
	"García", "Müller", "Okafor", "Nakamura", "O'Brien", "Dubois", "Rossi",
}

var recipientNames = []string{
	"Team", "Ops Desk", "Rémi Fauré", "Project List", "Günther Öztürk", "Board",
}
