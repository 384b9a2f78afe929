//! Container names: Docker's validation rule and generated `adjective_surname` names.

use rand::Rng;

const ADJECTIVES: &[&str] = &[
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
    "beautiful", "blissful", "bold", "boring", "brave", "busy", "charming", "clever",
    "compassionate", "competent", "condescending", "confident", "cool", "cranky", "crazy",
    "dazzling", "determined", "distracted", "dreamy", "eager", "ecstatic", "elastic",
    "elated", "elegant", "eloquent", "epic", "exciting", "fervent", "festive", "flamboyant",
    "focused", "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious",
    "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring",
    "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
    "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice",
    "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive",
    "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
    "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
    "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
    "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous",
    "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata",
    "austin", "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha",
    "black", "blackwell", "bohr", "booth", "borg", "bose", "brahmagupta", "brattain", "brown",
    "carson", "cerf", "chandrasekhar", "chaum", "clarke", "colden", "cori", "cray", "curie",
    "darwin", "davinci", "diffie", "dijkstra", "dubinsky", "easley", "edison", "einstein",
    "elgamal", "elion", "engelbart", "euclid", "euler", "faraday", "fermat", "fermi",
    "feynman", "franklin", "gagarin", "galileo", "gates", "gauss", "germain", "goldberg",
    "goldstine", "goodall", "hamilton", "hawking", "heisenberg", "hellman", "hermann",
    "hertz", "hodgkin", "hofstadter", "hoover", "hopper", "hypatia", "jackson", "jang",
    "jennings", "jepsen", "johnson", "joliot", "jones", "kalam", "kapitsa", "keller",
    "kepler", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr",
    "lamport", "leakey", "leavitt", "lederberg", "lehmann", "lewin", "lichterman", "liskov",
    "lovelace", "lumiere", "mahavira", "margulis", "matsumoto", "maxwell", "mayer",
    "mccarthy", "mcclintock", "meitner", "mendel", "merkle", "mestorf", "mirzakhani",
    "moore", "morse", "napier", "nash", "neumann", "newton", "nobel", "noether", "northcutt",
    "noyce", "panini", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare",
    "poitras", "ptolemy", "raman", "ramanujan", "ride", "ritchie", "robinson", "roentgen",
    "rosalind", "rubin", "saha", "sammet", "shamir", "shannon", "shaw", "shirley",
    "shockley", "sinoussi", "snyder", "spence", "stonebraker", "sutherland", "swanson",
    "swartz", "swirles", "taussig", "tesla", "thompson", "torvalds", "turing", "varahamihira",
    "villani", "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing",
    "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
];

/// A fresh `adjective_surname`; `retry` > 0 appends a digit, as Docker does after a clash.
pub fn generate(retry: u32) -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
    if retry == 0 {
        format!("{adjective}_{surname}")
    } else {
        format!("{adjective}_{surname}{}", rng.random_range(0..10))
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`.
pub fn validate(name: &str) -> Result<(), String> {
    let plain = name.strip_prefix('/').unwrap_or(name);
    let mut chars = plain.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid container name ({plain}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate("web").is_ok());
        assert!(validate("/web-1.a_b").is_ok());
        assert!(validate("a").is_err());
        assert!(validate("-web").is_err());
        assert!(validate("we b").is_err());
        assert_eq!(
            validate("a/b").unwrap_err(),
            "Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        let name = generate(0);
        assert!(validate(&name).is_ok() && name.contains('_'));
    }
}
